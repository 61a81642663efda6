/**
 * File descriptors run out: a client that can connect opens more connections than the
 * process may hold. Bun cannot cap connections itself, so this is the bound; extprov must
 * come back by itself once the clients go, and still stop cleanly.
 */
import { describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { openFileCount } from "../helpers/proc.ts";
import { startServer } from "../helpers/server.ts";
import { countBadInputs, countFaults } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const key = newSymmetricKey();
const hasPrlimit =
  Bun.spawnSync(["prlimit", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
if (!hasPrlimit)
  console.warn("descriptor exhaustion test skipped: prlimit (util-linux) is not installed");

async function status(socket: string): Promise<number> {
  try {
    return (await fetchUnix(socket, provisioningPath, { signal: AbortSignal.timeout(1_000) }))
      .status;
  } catch {
    return 0;
  }
}

describe.skipIf(!hasPrlimit)("more connections than file descriptors", () => {
  test("are held off while they last; once they go, extprov answers again and stops with 0", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const config = writeConfig(folder, symmetricKeyConfig(socket, key));
    const limit = 64;
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key],
      wrapper: ["prlimit", `--nofile=${limit}:${limit}`, "--"],
    });
    const pid = server.process.pid;

    const clients: Socket[] = Array.from({ length: 2 * limit }, () =>
      connect(socket).on("error", () => {}),
    );
    countBadInputs(clients.length);
    countFaults();
    const deadline = performance.now() + 10_000;
    while (openFileCount(pid) < limit && performance.now() < deadline) await Bun.sleep(50);

    expect(openFileCount(pid)).toBeGreaterThanOrEqual(limit);
    // Known limit: meanwhile a good client waits in the listen queue (here for 1 s, in vain).
    expect(await status(socket)).toBe(0);
    for (const client of clients) client.destroy();

    let answered = 0;
    for (let attempt = 0; attempt < 50 && answered !== 200; attempt++) {
      answered = await status(socket);
      if (answered !== 200) await Bun.sleep(100);
    }

    expect(answered).toBe(200);
    expect(openFileCount(pid)).toBeLessThan(limit / 2);
    expect(await server.stop()).toBe(0);
  });
});
