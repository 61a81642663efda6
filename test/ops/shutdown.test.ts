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
import { apiQuery, fetchUnix } from "../helpers/http.ts";
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

function slowHookServer(folder: string, key: string) {
  const socket = join(folder, "external.sock");
  const gate = join(folder, "release");
  writeSecret(folder, "device.key", key);
  writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate)]);
  const config = writeConfig(folder, {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "stopping-device" },
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    reprovision: { hook: ["slow.sh"] },
  });
  return { socket, gate, config };
}

describe("SIGTERM with a request in flight", () => {
  test("refuses new connections, answers the request in flight, removes the socket and exits 0", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const { socket, gate, config } = slowHookServer(folder, key);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

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
    const folder = tempDir();
    const key = newSymmetricKey();
    const { socket, config } = slowHookServer(folder, key);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const inFlight = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    server.process.kill("SIGTERM");

    const message = await expectErrorResponse(await inFlight, 503);
    expect(message).toBe(
      "the reprovision hook was stopped because extprov is shutting down; extprov still serves the previous identity",
    );
    expect(await server.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(server.output()).toContain(
      "requests still running at shutdown count=1: closing them 5 s after the stop signal",
    );
  });
});
