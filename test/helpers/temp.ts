/**
 * Temporary folders for tests: one per test, mode 0700, removed after the last test file
 * by test/preload.ts. (A hook registered here would belong to the first file that imports
 * this module only, and every later file's folders, keys included, would stay behind.)
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const created: string[] = [];

/** Removes every folder made so far; the preload calls it once the run is over. */
export function removeTempDirs(): void {
  for (const folder of created.splice(0)) rmSync(folder, { recursive: true, force: true });
}

/** A fresh folder only its owner can enter. */
export function tempDir(prefix = "extprov-test-"): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(folder, 0o700);
  created.push(folder);
  return folder;
}

/** A fresh folder other users may enter (for tests that switch to another uid). */
export function sharedTempDir(prefix = "extprov-test-"): string {
  const folder = tempDir(prefix);
  chmodSync(folder, 0o755);
  return folder;
}

/**
 * A folder in a fresh temporary folder, chosen so that `folder/name` is exactly `bytes`
 * long: for paths at the 107-byte limit of a Unix socket address.
 */
export function folderForPathOf(bytes: number, name: string): string {
  const base = tempDir();
  const padding = bytes - Buffer.byteLength(join(base, "x", name)) + 1;
  if (padding < 1) throw new Error(`${base} is too long for a path of ${bytes} bytes`);

  const folder = join(base, "d".repeat(padding));
  mkdirSync(folder, { mode: 0o700 });
  return folder;
}
