/**
 * The version printed by `--version`. The build embeds the git commit with
 * `--define EXTPROV_COMMIT=...`; run from source, it is "source".
 */
import { version as packageVersion } from "../../package.json";

declare const EXTPROV_COMMIT: string | undefined;

export const version: string = packageVersion;
export const commit: string = typeof EXTPROV_COMMIT === "string" ? EXTPROV_COMMIT : "source";

export function versionLine(): string {
  return `extprov ${version} (commit ${commit}, bun ${Bun.version}, ${process.platform}-${process.arch})`;
}
