/**
 * What the commands that print (help, version, check, probe, reload) write to stdout.
 */
import { writeSync } from "node:fs";
import { ExitCode, ExtprovError } from "../errors.ts";

/**
 * Writes to stdout whole, or fails the command with exit 1: a report lost to a full disk
 * or to a reader that went away must not pass as done. Synchronous, and without
 * process.stdout, whose stream modules (about 1 MiB) `serve` has no use for; the log goes
 * to stderr through Bun's own writer (log.ts).
 */
export function writeOutput(text: string): void {
  let rest = Buffer.from(text);

  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(1, rest));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A stdout another program made non-blocking takes the rest a moment later.
      if (code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      throw new ExtprovError(
        `cannot write the output to stdout (${code ?? "error"})`,
        ExitCode.failure,
        "check that its file system is not full and that what reads it is still there",
      );
    }
  }
}
