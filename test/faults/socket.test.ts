/**
 * Faults at the socket path: special files in its place before start, and the socket
 * removed or replaced while serving. extprov never opens, follows or deletes what it did
 * not make; it refuses, or stops with exit 4 so a restart binds a new socket.
 */
import { describe, expect, test } from "bun:test";
import {
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { countFaults } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const key = newSymmetricKey();
const isRoot = process.getuid?.() === 0;

async function serveIn(folder: string) {
  const socket = join(folder, "external.sock");
  const config = writeConfig(folder, symmetricKeyConfig(socket, key));
  return { socket, config };
}

describe("a special file at the socket path", () => {
  test("a FIFO is neither opened nor deleted, and the start is refused", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    Bun.spawnSync(["mkfifo", "-m", "0600", socket]);
    countFaults();

    const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `${socket} exists and is not a socket; extprov never deletes it`,
    );
    expect(lstatSync(socket).isFIFO()).toBe(true);
  });

  test.skipIf(!isRoot)(
    "a character device node (made like /dev/null) is left as it is",
    async () => {
      const folder = tempDir();
      const { socket, config } = await serveIn(folder);
      const made = Bun.spawnSync(["mknod", "-m", "0666", socket, "c", "1", "3"], {
        stderr: "pipe",
      });
      if (made.exitCode !== 0) {
        console.warn(
          `character device test skipped: mknod refused: ${made.stderr.toString().trim()}`,
        );
        return;
      }
      countFaults();

      const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

      expect(result.code).toBe(4);
      expect(result.output).toContain(`${socket} exists and is not a socket`);
      expect(lstatSync(socket).isCharacterDevice()).toBe(true);
      expect(lstatSync(socket).rdev).toBe(statSync("/dev/null").rdev);
    },
  );

  test("a symbolic link to /dev/null is not followed, and /dev/null is untouched", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    symlinkSync("/dev/null", socket);
    const before = statSync("/dev/null");
    countFaults();

    const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(`${socket} is a symbolic link`);
    expect(lstatSync(socket).isSymbolicLink()).toBe(true);
    const after = statSync("/dev/null");
    expect([after.isCharacterDevice(), after.rdev, after.mode]).toEqual([
      true,
      before.rdev,
      before.mode,
    ]);
  });
});

describe("the socket removed while serving", () => {
  test("extprov notices within seconds, says so, stops with exit 4 and deletes nothing", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    writeFileSync(join(folder, "user-file"), "user data");
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    unlinkSync(socket);
    countFaults();
    const code = await server.process.exited;

    expect(code).toBe(4);
    expect(server.output()).toContain(
      `socket lost, stopping endpoint=unix://${socket}: the socket file was removed; nobody can connect any more`,
    );
    expect(readdirSync(folder).sort()).toEqual(["config.yaml", "user-file"]);
    expect(readFileSync(join(folder, "user-file"), "utf8")).toBe("user data");
    expect(await server.stop()).toBe(4);
  });

  test("a file put in its place is kept when extprov stops", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    unlinkSync(socket);
    writeFileSync(socket, "someone else's file");
    countFaults();

    expect(await server.process.exited).toBe(4);
    expect(server.output()).toContain("another file took the socket's place");
    expect(readFileSync(socket, "utf8")).toBe("someone else's file");
    await server.stop();
  });

  test("SIGTERM right after the removal still exits 0, deleting nothing", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    unlinkSync(socket);
    writeFileSync(socket, "user data");
    server.process.kill("SIGTERM");
    countFaults();

    expect(await server.stop()).toBe(0);
    expect(readFileSync(socket, "utf8")).toBe("user data");
  });

  test("a new start after the loss binds a fresh socket and serves", async () => {
    const folder = tempDir();
    const { socket, config } = await serveIn(folder);
    const first = await startServer({ args: ["serve", "--config", config], secrets: [key] });
    rmSync(socket);
    countFaults();
    expect(await first.process.exited).toBe(4);
    await first.stop();

    const second = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await second.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });
});
