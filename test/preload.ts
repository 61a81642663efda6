/**
 * Loaded before the test files (bunfig.toml): names the record of the whole run
 * (test/helpers/suite-record.ts), and after the last file searches every line extprov
 * wrote and every error body it answered for every secret any test made, then prints how
 * many bad inputs and faults the suite tried. It also removes the tests' temporary folders.
 */
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSecret, SecretScanner } from "./helpers/secrets.ts";
import { killStrayServers } from "./helpers/server.ts";
import { readRecord } from "./helpers/suite-record.ts";
import { removeTempDirs } from "./helpers/temp.ts";

const folder = mkdtempSync(join(tmpdir(), "extprov-record-"));
chmodSync(folder, 0o700);
process.env.EXTPROV_TEST_RECORD = folder;

afterAll(() => {
  killStrayServers();
  removeTempDirs();
  const entries = readRecord();
  rmSync(folder, { recursive: true, force: true });

  const secrets = [
    ...new Set(entries.flatMap((entry) => (entry.kind === "secret" ? [entry.value] : []))),
  ];
  const texts = entries.flatMap((entry) =>
    entry.kind === "output" || entry.kind === "error-body" ? [entry] : [],
  );
  const total = (kind: string) =>
    entries.reduce(
      (sum, entry) => sum + ("count" in entry && entry.kind === kind ? entry.count : 0),
      0,
    );
  const scanner = new SecretScanner(secrets);
  const problems: string[] = [];

  for (const { kind, source, text } of texts) {
    for (const index of scanner.leaks(text))
      problems.push(`${kind} of ${source}: ${describeSecret(secrets, index)}`);
    // A log line starts with a time or a priority; only a stack frame starts with "at".
    if (kind === "output" && /^\s+at /m.test(text))
      problems.push(`${kind} of ${source}: a stack trace`);
  }

  const bytes = texts.reduce((sum, { text }) => sum + text.length, 0);
  console.log(
    `secrets: ${texts.length} outputs and error bodies (${bytes} characters) searched for ${secrets.length} secrets, ` +
      `${problems.length} problems`,
  );
  console.log(`robustness: ${total("bad-inputs")} bad inputs, ${total("faults")} faults injected`);

  if (problems.length > 0)
    throw new Error(`secrets or stack traces reached the output:\n${problems.join("\n")}`);
});
