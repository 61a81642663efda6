/**
 * Reprovision hooks for tests: small #!/bin/sh scripts, mode 0700, in the test's folder.
 * A hook that must wait does so on a file the test creates, in a bounded loop, so no
 * test depends on how long anything takes.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes `folder/name` as a shell script running `lines`, mode 0700; returns its path. */
export function writeHook(folder: string, name: string, lines: string[]): string {
  const path = join(folder, name);
  writeFileSync(path, ["#!/bin/sh", ...lines, ""].join("\n"));
  chmodSync(path, 0o700);
  return path;
}

/**
 * Shell lines that wait until `file` exists, checking every 50 ms, and give up with exit
 * code 9 after about 60 s, so a broken test never leaves a hook running.
 */
export function waitForFile(file: string): string[] {
  return [
    "i=0",
    `while [ ! -e '${file}' ]; do`,
    "  i=$((i + 1))",
    '  [ "$i" -gt 1200 ] && exit 9',
    "  sleep 0.05",
    "done",
  ];
}

/** Creates the file a hook waits for. */
export function release(file: string): void {
  writeFileSync(file, "");
}
