/**
 * The benchmark script itself works: a --quick run builds the servers, drives them
 * and prints a table with a row for each. No figure is judged here (the machine is shared);
 * figures come from `bun run bench` only.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../helpers/server.ts";

async function runBench(...args: string[]) {
  const child = Bun.spawn([process.execPath, join(repoRoot, "bench", "run.ts"), ...args], {
    cwd: repoRoot,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [output, errors, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { output, errors, code };
}

test("bench/run.ts --quick measures all the servers, and a baseline commit, in every column", async () => {
  const { output, errors, code } = await runBench("--quick", "--baseline", "HEAD");

  expect(errors).toBe("");
  expect(code).toBe(0);
  const servers = ["extprov", "bare Bun.serve", "plain Elysia", "node:http", "extprov at HEAD"];
  for (const server of servers) {
    expect(output.match(new RegExp(`^\\| ${server} \\|`, "gm"))?.length).toBe(2);
  }
  expect(output).toMatch(
    /Reload \(SIGHUP .*\) under 16-connection load: median [\d.]+ ms over 2 reloads; 0 failed of \d+ requests/,
  );
  expect(output).toContain("Load generator saturation");

  // Every target is judged in the run itself, beside plain Elysia's figure.
  const verdicts = output.match(/^\| [^|]+ \| [^|]+ \| [^|]* \| (yes|no) \|$/gm) ?? [];
  expect(verdicts).toHaveLength(7);
  expect(verdicts.find((line) => line.startsWith("| cold start ≤ 1.25× the ceiling"))).toMatch(
    /^\| cold start ≤ 1\.25× the ceiling \| [\d.]+× \| [\d.]+× \| (yes|no) \|$/,
  );
  expect(verdicts.at(-1)).toBe("| no failed request during reloads | 0 failed |  | yes |");
}, 300_000);

test.each(["no-such-commit", "HEAD:src", "--output=bench-output.tar"])(
  "bench/run.ts --baseline %s fails at once with one line, and git takes it for no option",
  async (ref) => {
    const { output, errors, code } = await runBench("--quick", `--baseline=${ref}`);

    expect(code).toBe(2);
    expect(errors).toBe(`bench: --baseline ${ref}: git knows no commit by that name\n`);
    expect(output).toBe("");
    expect(existsSync(join(repoRoot, "bench-output.tar"))).toBe(false);
  },
);

test.each(["--baseline", "--bogus"])(
  "bench/run.ts %s is a mistake told in one line, before anything is built",
  async (argument) => {
    const { output, errors, code } = await runBench(argument);

    expect(code).toBe(2);
    expect(errors).toMatch(/^bench: .* \(see the top of bench\/run\.ts\)\n$/);
    expect(output).toBe("");
  },
);
