/**
 * The benchmark script itself works: a --quick run builds the servers, drives them
 * and prints a table with a row for each. No figure is judged here (the machine is shared);
 * figures come from `bun run bench` only.
 */
import { expect, test } from "bun:test";
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
}, 300_000);

test("bench/run.ts --baseline with a commit git does not know fails at once and says so", async () => {
  const { output, errors, code } = await runBench("--quick", "--baseline", "no-such-commit");

  expect(code).not.toBe(0);
  expect(errors).toContain("--baseline no-such-commit");
  expect(output).not.toContain("| extprov |");
});
