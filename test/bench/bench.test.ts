/**
 * The benchmark script itself works: a --quick run builds the four servers, drives them
 * and prints a table with a row for each. No figure is judged here (the machine is shared);
 * figures come from `bun run bench` only.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { repoRoot } from "../helpers/server.ts";

test("bench/run.ts --quick measures all four servers and reports every column", async () => {
  const child = Bun.spawn([process.execPath, join(repoRoot, "bench", "run.ts"), "--quick"], {
    cwd: repoRoot,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [output, errors, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);

  expect(errors).toBe("");
  expect(code).toBe(0);
  for (const server of ["extprov", "bare Bun.serve", "plain Elysia", "node:http"]) {
    expect(output.match(new RegExp(`^\\| ${server} \\|`, "gm"))?.length).toBe(2);
  }
  expect(output).toMatch(
    /Reload \(SIGHUP .*\) under 16-connection load: median [\d.]+ ms over 2 reloads; 0 failed of \d+ requests/,
  );
  expect(output).toContain("Load generator saturation");
}, 300_000);
