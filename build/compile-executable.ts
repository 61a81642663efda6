/**
 * Compiles src/main.ts into one self-contained executable for one target, with the version
 * from package.json and the git commit embedded.
 */
import { join } from "node:path";
import type { Target } from "./targets.ts";

/** Bundler switches whose effect on start-up bench/startup.ts measures. */
export interface Flavor {
  minify: boolean;
  bytecode: boolean;
}

/** What the release uses; docs/building.md has the figures behind it. */
export const releaseFlavor: Flavor = { minify: false, bytecode: true };

export interface CompileRequest {
  target: Target;
  /** A verified Bun runtime for the target (see runtimes.ts). */
  runtime: string;
  outfile: string;
  commit: string;
  flavor?: Flavor;
  /** What to compile; extprov's src/main.ts unless a benchmark compiles its own server. */
  entrypoint?: string;
}

const entrypoint = join(import.meta.dir, "..", "src", "main.ts");

/** Writes the executable to `request.outfile`; fails with the bundler's messages. */
export async function compileExecutable(request: CompileRequest): Promise<void> {
  const flavor = request.flavor ?? releaseFlavor;

  const result = await Bun.build({
    entrypoints: [request.entrypoint ?? entrypoint],
    compile: {
      target: request.target.bunTarget,
      outfile: request.outfile,
      executablePath: request.runtime,
      // A service must not change behaviour with whatever .env or bunfig.toml happens to
      // lie in the folder it is started from.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    define: { EXTPROV_COMMIT: JSON.stringify(request.commit) },
    minify: flavor.minify,
    bytecode: flavor.bytecode,
    throw: false,
  });

  if (!result.success) {
    const messages = result.logs.map((log) => String(log)).join("\n");
    throw new Error(`compiling ${request.target.name} failed:\n${messages}`);
  }
}
