/**
 * Running extprov as another user: nobody (uid 65534), with setpriv. Only root can switch,
 * and nobody must be able to read the checkout that extprov runs from.
 */
import { chownSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./server.ts";

/** The prefix that runs a command as nobody, without supplementary groups. */
export const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/** Why tests that run extprov as nobody are skipped here, or undefined when they can run. */
export const asNobodySkipReason = findAsNobodySkipReason();

if (asNobodySkipReason)
  console.warn(`tests that run extprov as nobody skipped: ${asNobodySkipReason}`);

function findAsNobodySkipReason(): string | undefined {
  if (process.geteuid?.() !== 0) return "they need root to switch users";

  const main = join(repoRoot, "src", "main.ts");
  const reachable = Bun.spawnSync([
    ...asNobody,
    "sh",
    "-c",
    'test -x "$1" && test -r "$2"',
    "sh",
    process.execPath,
    main,
  ]);
  if (reachable.exitCode === 0) return undefined;
  return `nobody cannot read this checkout (${repoRoot}); clone it where every user may enter, or chmod o+x the folders above it`;
}

/**
 * Gives `path` to group daemon (gid 1, whose user daemon is no one extprov trusts), so that
 * its group bits reach another user; extprov accepts a group its trusted users hold alone.
 * Needs root.
 */
export function giveToSharedGroup(path: string): void {
  chownSync(path, process.geteuid!(), daemonGid);
}

const daemonGid = 1;
