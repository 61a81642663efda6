/**
 * Clients that connect and never finish: silent, dripping a request byte by byte, or
 * keeping a connection open after their answer. Bun closes each after about 10 seconds
 * of no complete request (its timer ticks every 4), extprov keeps answering others
 * meanwhile, and its memory stays bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { residentMiB } from "../helpers/proc.ts";
import { type RunningServer, serveSymmetricKey } from "../helpers/server.ts";
import { countBadInputs } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const key = newSymmetricKey();
let socket: string;
let server: RunningServer;

beforeAll(async () => {
  ({ socket, server } = await serveSymmetricKey(key));
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

interface Watched {
  socket: Socket;
  closedAt?: number;
}

/** Connects to `path` and notes when the other side closes. */
function open(path: string, started: number): Watched {
  const watched: Watched = { socket: connect(path) };
  watched.socket.on("error", () => {});
  // Read whatever comes, or the end of the stream is never seen.
  watched.socket.on("data", () => {});
  watched.socket.on("close", () => (watched.closedAt = performance.now() - started));
  return watched;
}

async function waitUntil(done: () => boolean, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!done() && performance.now() < deadline) await Bun.sleep(250);
}

describe("Bun's idle timeout", () => {
  test("applies to a unix listener, though bun-types declares it for TCP only", async () => {
    const folder = tempDir();
    const serve = (name: string, idle?: number) =>
      // @ts-expect-error idleTimeout is typed for TCP listeners; this checks it works on unix.
      Bun.serve({ unix: join(folder, name), idleTimeout: idle, fetch: () => new Response("ok") });
    const short = serve("short.sock", 1);
    const standard = serve("standard.sock");
    const started = performance.now();
    const request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    const [onShort, onStandard] = [
      open(join(folder, "short.sock"), started),
      open(join(folder, "standard.sock"), started),
    ];
    onShort.socket.write(request);
    onStandard.socket.write(request);

    await waitUntil(() => onShort.closedAt !== undefined, 9_000);

    expect(onShort.closedAt).toBeLessThan(9_000);
    expect(onStandard.closedAt).toBeUndefined();
    onStandard.socket.destroy();
    short.stop(true);
    standard.stop(true);
  });
});

describe("clients that never finish a request", () => {
  test("are all closed by the server within 20 s while others are answered", async () => {
    const rssBefore = residentMiB(server.process.pid);
    const started = performance.now();
    const silent = Array.from({ length: 100 }, () => open(socket, started));
    const partial = Array.from({ length: 100 }, () => open(socket, started));
    const keepAlive = open(socket, started);
    for (const { socket: client } of partial)
      client.write(
        "GET /device/provisioninginformation?api-version=2019-04-10 HTTP/1.1\r\nHost: x\r\n",
      );
    keepAlive.socket.write(`GET ${provisioningPath} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    countBadInputs(silent.length + partial.length);

    // One byte per second on every partial request: the server must not count that as progress.
    const drip = setInterval(() => {
      for (const { socket: client, closedAt } of partial)
        if (closedAt === undefined) client.write("X");
    }, 1_000);
    const answered: number[] = [];
    const everyone = [...silent, ...partial, keepAlive];
    while (
      performance.now() - started < 20_000 &&
      everyone.some(({ closedAt }) => closedAt === undefined)
    ) {
      answered.push((await fetchUnix(socket, provisioningPath)).status);
      await Bun.sleep(500);
    }
    clearInterval(drip);

    const stillOpen = everyone.filter(({ closedAt }) => closedAt === undefined).length;
    for (const { socket: client } of everyone) client.destroy();
    expect(stillOpen).toBe(0);
    expect(Math.max(...everyone.map(({ closedAt }) => closedAt!))).toBeLessThan(20_000);
    expect(answered.length).toBeGreaterThan(5);
    expect(answered.every((status) => status === 200)).toBe(true);
    expect(residentMiB(server.process.pid) - rssBefore).toBeLessThan(64);
  });
});
