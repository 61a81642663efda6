/**
 * Small tmpfs mounts for fault tests: a read-only or a full file system of our own, in a
 * temporary folder. Needs root and a sandbox that allows mount; `mountSkipReason` says
 * why not, for a visible skip.
 */
import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Mounts a tmpfs with `options` (e.g. "ro,size=64k") on `folder`; throws with mount's message. */
export function mountTmpfs(folder: string, options: string): void {
  const result = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", options, "extprov-test", folder], {
    stderr: "pipe",
  });
  if (result.exitCode !== 0)
    throw new Error(`mount -o ${options} failed: ${result.stderr.toString().trim()}`);
}

/** Unmounts what mountTmpfs mounted on `folder`. */
export function unmount(folder: string): void {
  Bun.spawnSync(["umount", folder]);
}

function probeMount(): string | undefined {
  if (process.getuid?.() !== 0) return "they need root to mount a tmpfs";

  const folder = mkdtempSync(join(tmpdir(), "extprov-mount-probe-"));
  try {
    mountTmpfs(folder, "size=4k");
    unmount(folder);
    return undefined;
  } catch (error) {
    return `mount is not permitted here (${(error as Error).message})`;
  } finally {
    rmdirSync(folder);
  }
}

/** Why tmpfs tests cannot run here, or undefined when they can. */
export const mountSkipReason = probeMount();
