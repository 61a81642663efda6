/**
 * A record of the whole test run, in the folder that test/preload.ts names in
 * EXTPROV_TEST_RECORD: every secret the tests make, everything extprov writes, every
 * error body it answers, and how many bad inputs and faults the tests tried. The
 * preload's final hook checks the texts for every secret and prints the counts.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export type RecordEntry =
  | { kind: "secret"; value: string }
  | { kind: "output" | "error-body"; source: string; text: string }
  | { kind: "bad-inputs" | "faults"; count: number };

function recordFile(): string | undefined {
  const folder = process.env.EXTPROV_TEST_RECORD;
  return folder ? join(folder, "record.jsonl") : undefined;
}

function append(entry: RecordEntry): void {
  const file = recordFile();
  if (file) appendFileSync(file, JSON.stringify(entry) + "\n", { mode: 0o600 });
}

/** Registers values that must appear in no log line and no error body of the whole run. */
export function recordSecrets(secrets: readonly string[]): void {
  for (const value of secrets) append({ kind: "secret", value });
}

/** Keeps everything an extprov process wrote, named by its command line. */
export function recordOutput(source: string, text: string): void {
  append({ kind: "output", source, text });
}

/** Keeps the body of an error answer (status 400 and above). */
export function recordErrorBody(source: string, text: string): void {
  append({ kind: "error-body", source, text });
}

/** Counts requests built to be wrong (malformed, oversized, unusual). */
export function countBadInputs(count: number): void {
  if (count > 0) append({ kind: "bad-inputs", count });
}

/** Counts faults injected into the environment (files removed, disks filled, ...). */
export function countFaults(count = 1): void {
  if (count > 0) append({ kind: "faults", count });
}

/** Everything recorded so far. */
export function readRecord(): RecordEntry[] {
  const file = recordFile();
  if (!file || !existsSync(file)) return [];

  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RecordEntry);
}
