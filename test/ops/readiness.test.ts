/**
 * Readiness under systemd: with NOTIFY_SOCKET set, READY=1 comes from extprov's own pid
 * only once its socket exists with the configured owner, group and mode, and after the
 * drop to the service user; RELOADING=1 and READY=1 frame each reload, STOPPING=1 a stop.
 * A python3 listener in the test's folder stands in for systemd.
 */
import { describe, expect, test } from "bun:test";
import { chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { socketEndpoint, symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { notifyListener, python } from "../helpers/notify.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { sharedTempDir, tempDir } from "../helpers/temp.ts";

const isRoot = process.getuid?.() === 0;

async function servedWithListener(address?: (folder: string) => string) {
  const folder = tempDir();
  const socket = join(folder, "external.sock");
  const key = newSymmetricKey();
  writeSecret(folder, "device.key", key);
  const config = writeConfig(folder, symmetricKeyConfig(socket, key));
  const listener = await notifyListener(
    folder,
    address?.(folder) ?? join(folder, "notify.sock"),
    socket,
  );
  const server = await startServer({
    args: ["serve", "--config", config],
    secrets: [key],
    env: { NOTIFY_SOCKET: listener.address },
  });
  return { folder, socket, key, config, listener, server };
}

describe("under systemd's NOTIFY_SOCKET", () => {
  test("READY=1 comes from extprov's pid once the socket exists with its configured mode", async () => {
    const { listener, server } = await servedWithListener();
    using _ = listener;

    const ready = await listener.waitFor("READY");

    expect(listener.notifications.indexOf(ready)).toBe(0);
    expect(ready.pid).toBe(server.process.pid!);
    expect(ready.socketAtPath).toEqual({
      socket: true,
      mode: 0o600,
      uid: process.getuid!(),
      gid: process.getgid!(),
    });
    expect(ready.fields).toEqual({
      READY: "1",
      STATUS: "serving test-device in test-hub.azure-devices.net",
    });
    expect(await server.stop()).toBe(0);
  });

  test("an abstract @name socket works as well as a path", async () => {
    const name = `@extprov-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const { listener, server } = await servedWithListener(() => name);
    using _ = listener;

    expect((await listener.waitFor("READY")).pid).toBe(server.process.pid!);
    expect(await server.stop()).toBe(0);
  });

  test("a reload is framed by RELOADING=1 with MONOTONIC_USEC and READY=1", async () => {
    const { listener, server } = await servedWithListener();
    using _ = listener;
    await listener.waitFor("READY");

    server.process.kill("SIGHUP");
    const reloading = await listener.waitFor("RELOADING");
    const ready = await listener.waitFor("READY", listener.notifications.indexOf(reloading) + 1);

    const stamp = Number(reloading.fields.MONOTONIC_USEC);
    expect(stamp).toBeGreaterThan(0);
    expect(stamp).toBeLessThanOrEqual(reloading.monotonicUsec);
    expect(ready.fields.STATUS).toBe("serving test-device in test-hub.azure-devices.net");
    expect(await server.stop()).toBe(0);
  });

  test("a failed reload still ends its RELOADING=1 with READY=1, and says so in STATUS", async () => {
    const { folder, listener, server } = await servedWithListener();
    using _ = listener;
    await listener.waitFor("READY");

    writeFileSync(join(folder, "config.yaml"), "device: [unclosed\n");
    server.process.kill("SIGHUP");
    const reloading = await listener.waitFor("RELOADING");
    const ready = await listener.waitFor("READY", listener.notifications.indexOf(reloading) + 1);

    expect(ready.fields.STATUS).toBe(
      "reload failed; serving test-device in test-hub.azure-devices.net",
    );
    expect(await server.stop()).toBe(0);
  });

  test("STOPPING=1 is the last message, on SIGTERM", async () => {
    const { listener, server } = await servedWithListener();
    using _ = listener;
    await listener.waitFor("READY");

    expect(await server.stop()).toBe(0);
    const all = await listener.drain();

    expect(all.map((notification) => Object.keys(notification.fields)[0])).toEqual([
      "READY",
      "STOPPING",
    ]);
    expect(all[1]!.fields.STATUS).toBe("stopping on SIGTERM");
  });

  test("a refused start sends nothing", async () => {
    const folder = tempDir();
    const config = writeConfig(folder, { credentials: {} });
    using listener = await notifyListener(
      folder,
      join(folder, "notify.sock"),
      join(folder, "external.sock"),
    );

    const result = await runExtprov({
      args: ["serve", "--config", config],
      env: { NOTIFY_SOCKET: listener.address },
    });

    expect(result.code).toBe(3);
    expect(await listener.drain()).toEqual([]);
  });

  test("a NOTIFY_SOCKET nobody listens on is logged once with the errno's name, and extprov serves", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const config = writeConfig(folder, symmetricKeyConfig(socket, key));
    const nobodyListens = join(folder, "no-such-notify.sock");

    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key],
      env: { NOTIFY_SOCKET: nobodyListens },
    });

    expect(server.count("error cannot notify systemd")).toBe(1);
    expect(server.output()).toContain(`socket=${nobodyListens}: sendto() failed (ENOENT)`);
    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  test("without the JIT (MemoryDenyWriteExecute) it says why it cannot notify, and serves", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const config = writeConfig(folder, symmetricKeyConfig(socket, key));
    using listener = await notifyListener(folder, join(folder, "notify.sock"), socket);
    // PR_SET_MDWE (Linux 6.3) with PR_MDWE_REFUSE_EXEC_GAIN: what MemoryDenyWriteExecute asks for.
    const wrapper = [
      python,
      "-c",
      "import ctypes,os,sys; ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0 or sys.exit('no PR_SET_MDWE'); os.execv(sys.argv[1], sys.argv[1:])",
    ];

    const server = await startServer({
      args: ["serve", "--config", config],
      wrapper,
      secrets: [key],
      env: { NOTIFY_SOCKET: listener.address },
    });

    expect(server.output()).toContain("error cannot notify systemd");
    expect(server.output()).toContain(
      ": bun:ffi requires the JIT; let the service use the JIT (MemoryDenyWriteExecute=no)",
    );
    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(await listener.drain()).toEqual([]);
  });
});

describe.skipIf(!isRoot)("readiness after dropping root", () => {
  test("READY=1 is sent as the service user, with the socket already given to its owner and group", async () => {
    const folder = sharedTempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const keyFile = writeSecret(folder, "device.key", key);
    chownSync(keyFile, 65534, 65534);
    const config = writeConfig(
      folder,
      {
        device: { hubName: "test-hub.azure-devices.net", deviceId: "dropping-device" },
        credentials: { symmetricKey: { file: keyFile } },
        listen: { endpoint: socketEndpoint(socket), socket: { owner: 1, group: 1, mode: "0660" } },
        runAs: { user: "nobody" },
      },
      "config.yaml",
      0o644,
    );
    using listener = await notifyListener(folder, join(folder, "notify.sock"), socket);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key],
      env: { NOTIFY_SOCKET: listener.address },
    });

    const ready = await listener.waitFor("READY");

    expect([ready.pid, ready.uid, ready.euid]).toEqual([server.process.pid!, 65534, 65534]);
    expect(ready.socketAtPath).toEqual({ socket: true, mode: 0o660, uid: 1, gid: 1 });
    expect(server.output().indexOf("dropped privileges")).toBeLessThan(
      server.output().indexOf(" serving "),
    );
    expect(await server.stop()).toBe(0);
  });
});
