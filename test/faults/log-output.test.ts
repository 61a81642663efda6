/**
 * The log output fails: stdout and stderr closed before start, or the reader of the log
 * pipe gone while serving (every later write gets EPIPE). extprov keeps serving, reloads,
 * and stops cleanly with exit 0: src/log.ts drops failed writes and main.ts ignores the
 * streams' errors.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, constants, existsSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { sourceCommand } from "../helpers/server.ts";
import { countFaults, recordOutput } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const key = newSymmetricKey();

async function answers(socket: string): Promise<number> {
  try {
    return (await fetchUnix(socket, provisioningPath)).status;
  } catch {
    return 0;
  }
}

async function waitForAnswer(socket: string): Promise<void> {
  const deadline = performance.now() + 15_000;
  while ((await answers(socket)) !== 200 && performance.now() < deadline) await Bun.sleep(50);
}

describe("a log output that fails", () => {
  test("stdout and stderr closed before start: extprov serves, reloads and exits 0", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const config = writeConfig(folder, symmetricKeyConfig(socket, key));
    const child = Bun.spawn(
      ["sh", "-c", 'exec "$@" 1>&- 2>&-', "sh", ...sourceCommand, "serve", "--config", config],
      { stdin: "ignore" },
    );
    countFaults();

    await waitForAnswer(socket);
    child.kill("SIGHUP");

    expect(await answers(socket)).toBe(200);
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  test("the log reader gone while serving: every write fails with EPIPE, extprov keeps serving", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const config = writeConfig(folder, symmetricKeyConfig(socket, key));
    const fifo = join(folder, "log.fifo");
    Bun.spawnSync(["mkfifo", "-m", "0600", fifo]);
    // Reader first (non-blocking), so opening the writing end does not wait.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const child = Bun.spawn([...sourceCommand, "serve", "--config", config], {
      stdin: "ignore",
      stdout: writer,
      stderr: writer,
    });
    closeSync(writer);

    let log = "";
    const chunk = Buffer.alloc(4096);
    const deadline = performance.now() + 15_000;
    while (!log.includes(" serving endpoint=") && performance.now() < deadline) {
      try {
        log += chunk.toString("utf8", 0, readSync(reader, chunk));
      } catch {
        await Bun.sleep(20);
      }
    }
    closeSync(reader);
    recordOutput("extprov with a closed log pipe", log);
    countFaults();

    const statuses = [];
    for (let index = 0; index < 20; index++) statuses.push(await answers(socket));
    child.kill("SIGHUP");
    await Bun.sleep(100);
    statuses.push(await answers(socket));

    expect(log).toContain(" serving endpoint=");
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });
});
