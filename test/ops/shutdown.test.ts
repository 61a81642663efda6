/**
 * Stopping with work in flight: SIGTERM closes the listener at once, lets requests in
 * flight finish (here one held by a slow reprovision hook), removes the socket and exits
 * 0; a request still running after the grace period is answered 503 and closed.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { release, waitForFile, writeHook } from "../helpers/hooks.ts";
import { apiQuery, fetchUnix, provisioningPath } from "../helpers/http.ts";
import { expectErrorResponse, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";

const reprovisionPath = `/device/reprovision?${apiQuery}`;

/** A new connection's error code: a fresh one, so no pooled connection can hide it. */
function connectError(socket: string): Promise<string | undefined> {
  const { promise, resolve } = Promise.withResolvers<string | undefined>();
  const client = connect(socket);
  client.once("connect", () => {
    client.destroy();
    resolve("connected");
  });
  client.once("error", (error: NodeJS.ErrnoException) => resolve(error.code));
  return promise;
}

/**
 * A connection that got one answer and then sent only the start of a second request: the
 * answer proves extprov has accepted it, so the half request is surely in its hands.
 * `closed` resolves when extprov closes the connection.
 */
async function halfSentRequest(socket: string): Promise<{ closed: Promise<void> }> {
  const answered = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  const client = connect(socket);
  client.once("connect", () => client.write(`GET ${provisioningPath} HTTP/1.1\r\nHost: x\r\n\r\n`));
  client.once("data", () => answered.resolve());
  client.once("close", () => closed.resolve());
  client.on("error", () => {});

  await answered.promise;
  client.write(`GET ${provisioningPath} HTTP/1.1\r\nHost: x\r\n`);
  return { closed: closed.promise };
}

function keyServer(folder: string, key: string, extra: Record<string, unknown> = {}) {
  const socket = join(folder, "external.sock");
  writeSecret(folder, "device.key", key);
  const config = writeConfig(folder, {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "stopping-device" },
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    ...extra,
  });
  return { socket, config };
}

function slowHookServer(folder: string, key: string) {
  const gate = join(folder, "release");
  writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate)]);
  return { gate, ...keyServer(folder, key, { reprovision: { hook: ["slow.sh"] } }) };
}

/** Starts extprov with a fresh key in a fresh folder that `prepare` fills. */
async function startIn<Files extends { config: string }>(
  prepare: (folder: string, key: string) => Files,
) {
  const key = newSymmetricKey();
  const files = prepare(tempDir(), key);
  const server = await startServer({ args: ["serve", "--config", files.config], secrets: [key] });
  return { ...files, server };
}

describe("SIGTERM with a request in flight", () => {
  test("refuses new connections, answers the request in flight, removes the socket and exits 0", async () => {
    const { socket, gate, server } = await startIn(slowHookServer);

    const inFlight = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    server.process.kill("SIGTERM");
    await server.waitFor("stopping signal=SIGTERM");
    const refused = await connectError(socket);
    release(gate);

    expect(refused).toBe("ENOENT");
    expect((await inFlight).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(server.output()).toContain("hook finished");
    expect(server.output()).not.toContain("requests still running at shutdown");
  });

  test("stops a hook still running after 5 s, answers its request 503, and exits 0", async () => {
    const { socket, server } = await startIn(slowHookServer);

    // Opened first: a provisioning request waits for the reprovision to end.
    const half = await halfSentRequest(socket);
    const inFlight = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    server.process.kill("SIGTERM");

    const message = await expectErrorResponse(await inFlight, 503);
    expect(message).toBe(
      "reprovision stopped: extprov is shutting down; the identity was not changed",
    );
    expect(await server.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    await half.closed;
    expect(server.output()).toContain(
      "requests still running at shutdown count=1: closing them 5 s after the stop signal",
    );
    expect(server.output()).toContain(
      "warn  reprovision stopped: extprov is shutting down: the identity was not changed",
    );
    expect(server.output()).not.toContain("still serving the last good state");
  });
});

describe("SIGTERM with no request in flight", () => {
  test("closes a connection whose request was never finished at once, and exits 0 well before the grace", async () => {
    const { socket, server } = await startIn(keyServer);
    const half = await halfSentRequest(socket);

    const signalled = performance.now();
    const code = await server.stop();
    const exitedAfter = performance.now() - signalled;
    await half.closed;

    expect(code).toBe(0);
    expect(exitedAfter).toBeLessThan(4_000);
    expect(server.output()).toContain("stopped endpoint=");
    expect(server.output()).not.toContain("requests still running at shutdown");
  });
});
