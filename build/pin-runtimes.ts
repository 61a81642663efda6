/**
 * Rewrites build/runtimes.json for the Bun version in package-lock.json: the registry's
 * integrity of every target's runtime tarball. Run it after bumping the `bun` devDependency
 * and review the diff; the build then trusts exactly these tarballs.
 */
import { join } from "node:path";
import { runCommand } from "./run-command.ts";
import { pinnedBunVersion } from "./runtimes.ts";
import { targets } from "./targets.ts";

const root = join(import.meta.dir, "..");
const version = await pinnedBunVersion(root);

const integrity: Record<string, string> = {};
for (const target of targets) {
  const spec = `${target.runtimePackage}@${version}`;
  const answer = runCommand(["npm", "view", spec, "dist.integrity", "--json"]);
  integrity[target.runtimePackage] = JSON.parse(answer);
}

const pins = JSON.stringify({ bun: version, integrity }, null, 2) + "\n";
await Bun.write(join(import.meta.dir, "runtimes.json"), pins);
console.log(`build/runtimes.json: pinned ${targets.length} runtimes of bun ${version}`);
