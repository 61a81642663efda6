/**
 * iotedged's reprovision notice: the hook runs, extprov reloads, and only then answers;
 * a hook that fails or overruns is answered with an ErrorResponse and the last good
 * state stays served. Provisioning requests during a reprovision wait for its outcome.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { release, waitForFile, writeHook } from "../helpers/hooks.ts";
import { apiQuery, curlUnix, fetchUnix, provisioningPath } from "../helpers/http.ts";
import { expectErrorResponse, runExtprov, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";
import { giveToSharedGroup } from "../helpers/users.ts";

const first = { hubName: "first-hub.azure-devices.net", deviceId: "first-device" };
const second = { hubName: "second-hub.azure-devices.net", deviceId: "second-device" };
const reprovisionPath = `/device/reprovision?${apiQuery}`;

interface Device {
  hubName: string;
  deviceId: string;
  status?: string;
  substatus?: string;
}

/** A folder with config.yaml serving `device` with the key in device.key. */
function prepare(device: Device = first, reprovision?: Record<string, unknown>) {
  const folder = tempDir();
  const socket = join(folder, "external.sock");
  const key = newSymmetricKey();
  writeSecret(folder, "device.key", key);
  const config = writeConfig(folder, documentFor(socket, device, reprovision));
  return { folder, socket, key, config };
}

function documentFor(socket: string, device: Device, reprovision?: Record<string, unknown>) {
  return {
    device,
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    ...(reprovision ? { reprovision } : {}),
  };
}

/** next.yaml and next.key beside config.yaml, which a hook moves into place. */
function prepareNext(
  folder: string,
  socket: string,
  device: Device,
  reprovision: Record<string, unknown>,
) {
  const key = newSymmetricKey();
  writeSecret(folder, "next.key", key);
  writeConfig(folder, documentFor(socket, device, reprovision), "next.yaml");
  return key;
}

const switchLines = (folder: string) => [
  `mv '${folder}/next.key' '${folder}/device.key'`,
  `mv '${folder}/next.yaml' '${folder}/config.yaml'`,
];

async function info(socket: string) {
  const response = await fetchUnix(socket, provisioningPath);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, any>;
}

describe("a reprovision notice with a hook that succeeds", () => {
  test("answers 200 once the new identity is served, with status assigned and substatus deviceDataReset", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["switch.sh"] });
    const nextKey = prepareNext(folder, socket, second, { hook: ["switch.sh"] });
    writeHook(folder, "switch.sh", [
      'echo "moving $EXTPROV_DEVICE_ID of $EXTPROV_HUB_NAME"',
      ...switchLines(folder),
    ]);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, nextKey],
    });

    const reply = await fetchUnix(socket, reprovisionPath);
    const body = await info(socket);

    expect(reply.status).toBe(200);
    expect(await reply.text()).toBe("");
    expect(body).toEqual({
      ...second,
      credentials: { authType: "symmetric-key", source: "payload", key: nextKey },
      status: "assigned",
      substatus: "deviceDataReset",
    });
    expect(server.output()).toContain(
      `hook output stream=stdout line="moving ${first.deviceId} of ${first.hubName}"`,
    );
    expect(server.output()).toContain(
      `identity changed previousHub=${first.hubName} previousDevice=${first.deviceId} hub=${second.hubName}`,
    );
    expect(server.output()).toContain("hook finished");
    expect(await server.stop()).toBe(0);
  });

  const explicit: [
    string,
    Record<string, unknown>,
    Record<string, unknown>,
    { status: string; substatus: string },
  ][] = [
    [
      "reprovision.afterIdentityChange",
      {},
      { afterIdentityChange: { substatus: "deviceDataMigrated" } },
      { status: "assigned", substatus: "deviceDataMigrated" },
    ],
    [
      "the device section",
      { status: "assigning", substatus: "initialAssignment" },
      {},
      { status: "assigning", substatus: "initialAssignment" },
    ],
    [
      "afterIdentityChange over the device section",
      { substatus: "initialAssignment" },
      { afterIdentityChange: { status: "disabled" } },
      { status: "disabled", substatus: "initialAssignment" },
    ],
  ];

  for (const [name, device, rules, expected] of explicit) {
    test(`serves the status and substatus set in ${name} after an identity change`, async () => {
      const { folder, socket, key, config } = prepare(first, { hook: ["switch.sh"] });
      const nextKey = prepareNext(
        folder,
        socket,
        { ...second, ...device },
        { hook: ["switch.sh"], ...rules },
      );
      writeHook(folder, "switch.sh", switchLines(folder));
      const server = await startServer({
        args: ["serve", "--config", config],
        secrets: [key, nextKey],
      });

      expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
      const body = await info(socket);

      expect({ status: body.status, substatus: body.substatus }).toEqual(expected);
      expect(await server.stop()).toBe(0);
    });
  }

  test("serves the configured status (here none) when the identity stays the same, and the new key", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["switch.sh"] });
    const nextKey = prepareNext(folder, socket, first, { hook: ["switch.sh"] });
    writeHook(folder, "switch.sh", switchLines(folder));
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, nextKey],
    });

    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
    const body = await info(socket);

    expect(body).toEqual({
      ...first,
      credentials: { authType: "symmetric-key", source: "payload", key: nextKey },
    });
    expect(server.output()).not.toContain("identity changed");
    expect(await server.stop()).toBe(0);
  });

  test("keeps the status after an identity change through a later reload of the same identity", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["switch.sh"] });
    const nextKey = prepareNext(folder, socket, second, { hook: ["switch.sh"] });
    writeHook(folder, "switch.sh", switchLines(folder));
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, nextKey],
    });
    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);

    server.process.kill("SIGHUP");
    await server.waitFor("reloaded trigger=SIGHUP");
    const body = await info(socket);

    expect([body.deviceId, body.status, body.substatus]).toEqual([
      second.deviceId,
      "assigned",
      "deviceDataReset",
    ]);
    expect(await server.stop()).toBe(0);
  });

  test("runs with only PATH and the EXTPROV_ variables in its environment", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["env.sh"] });
    writeHook(folder, "env.sh", ["env | sort"]);
    const env = {
      NOTIFY_SOCKET: join(folder, "no-listener"),
      EXTPROV_TEST_SECRET: "must-not-reach-the-hook",
    };
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key], env });

    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
    await server.waitFor("hook finished");

    const names = [...server.output().matchAll(/hook output stream=stdout line="?([A-Z_]+)=/g)].map(
      (match) => match[1],
    );
    expect(names.filter((name) => !["PWD", "SHLVL", "_"].includes(name!))).toEqual([
      "EXTPROV_CONFIG",
      "EXTPROV_DEVICE_ID",
      "EXTPROV_HUB_NAME",
      "PATH",
    ]);
    expect(server.output()).toContain(`line="EXTPROV_CONFIG=${config}"`);
    expect(server.output()).not.toContain("must-not-reach-the-hook");
    expect(await server.stop()).toBe(0);
  });

  test("keeps keys a hook prints out of the log, the served one and a new one alike", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["leak.sh"] });
    const newKey = newSymmetricKey();
    writeHook(folder, "leak.sh", [
      `echo "served: $(cat '${folder}/device.key')"`,
      `echo "new key: ${newKey}"`,
      "echo 'all done'",
    ]);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, newKey],
    });

    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
    await server.waitFor("hook finished");

    expect(server.output()).toContain('line="<line withheld: it holds a credential>"');
    expect(server.output()).toContain('line="new key: <redacted>"');
    expect(server.output()).toContain('line="all done"');
    expect(await server.stop()).toBe(0);
  });

  test("kills what a successful hook left running in the background, and says so", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["background.sh"] });
    writeHook(folder, "background.sh", [`sleep 60 &`, `echo $! > '${folder}/left.pid'`]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
    const left = readFileSync(join(folder, "left.pid"), "utf8").trim();

    await server.waitFor("warn  hook left processes running hook=");
    await waitUntil(() => !existsSync(`/proc/${left}`) || isZombie(left));
    expect(await server.stop()).toBe(0);
  });
});

describe("a HEAD request", () => {
  test("on /device/reprovision is a 405 and runs neither the hook nor a reload", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["mark.sh"] });
    const marker = join(folder, "hook-ran");
    writeHook(folder, "mark.sh", [`echo ran >> '${marker}'`]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const head = curlUnix(socket, reprovisionPath, ["--head"]);
    await server.waitFor("request method=HEAD path=/device/reprovision status=405");

    expect(head.exitCode).toBe(0);
    expect(head.status).toBe(405);
    expect(head.body.toLowerCase()).toContain("allow: get, post");
    expect(existsSync(marker)).toBe(false);
    expect(server.output()).not.toContain("reprovision requested");
    expect(server.output()).not.toContain("reloaded");

    expect((await fetchUnix(socket, reprovisionPath)).status).toBe(200);
    expect(readFileSync(marker, "utf8")).toBe("ran\n");
    expect(await server.stop()).toBe(0);
  });
});

describe("a reprovision notice without a hook", () => {
  test("reloads, so a key changed on disk is served from the answer on", async () => {
    const { folder, socket, key, config } = prepare();
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });
    const newKey = newSymmetricKey();
    writeSecret(folder, "device.key", newKey);

    expect((await fetchUnix(socket, reprovisionPath, { method: "POST" })).status).toBe(200);

    expect((await info(socket)).credentials.key).toBe(newKey);
    expect(server.output()).toContain("reloaded trigger=reprovision");
    expect(await server.stop()).toBe(0);
  });
});

describe("a reprovision that fails", () => {
  test("answers 500 with the hook's exit code when it fails, and keeps the old identity", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["fail.sh"] });
    const nextKey = prepareNext(folder, socket, second, {});
    writeHook(folder, "fail.sh", ["echo 'the backend did not answer' >&2", "exit 3"]);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, nextKey],
    });

    const message = await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 500);

    expect(message).toBe(
      "the reprovision hook exited with code 3; extprov still serves the previous identity",
    );
    expect(await info(socket)).toEqual({
      ...first,
      credentials: { authType: "symmetric-key", source: "payload", key },
    });
    expect(server.output()).toContain(
      'hook output stream=stderr line="the backend did not answer"',
    );
    expect(server.output()).toContain(
      "reprovision failed, still serving the last good state: the reprovision hook exited with code 3",
    );
    expect(await server.stop()).toBe(0);
  });

  test("answers 503 when the hook overruns its time, after stopping it and what it started", async () => {
    const { folder, socket, key, config } = prepare(first, {
      hook: ["slow.sh"],
      timeoutSeconds: 1,
    });
    writeHook(folder, "slow.sh", [
      `echo $$ > '${folder}/hook.pid'`,
      ...waitForFile(join(folder, "never")),
    ]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const message = await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 503);
    const pid = readFileSync(join(folder, "hook.pid"), "utf8").trim();

    expect(message).toBe(
      "the reprovision hook did not finish within 1 s and was stopped; extprov still serves the previous identity",
    );
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect((await info(socket)).credentials.key).toBe(key);
    expect(server.output()).toContain("hook timed out hook=");
    expect(await server.stop()).toBe(0);
  });

  test("kills a hook that ignores SIGTERM with SIGKILL", async () => {
    const { folder, socket, key, config } = prepare(first, {
      hook: ["stubborn.sh"],
      timeoutSeconds: 1,
    });
    writeHook(folder, "stubborn.sh", ["trap '' TERM", ...waitForFile(join(folder, "never"))]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 503);

    expect(server.output()).toContain("hook killed hook=");
    expect(server.output()).toContain("signal=SIGKILL");
    expect(await server.stop()).toBe(0);
  });

  test("answers 500 when the hook cannot be started, saying why", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["plain.sh"] });
    writeFileSync(join(folder, "plain.sh"), "echo no interpreter line\n", { mode: 0o700 });
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const message = await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 500);

    expect(message).toBe(
      `the reprovision hook ${folder}/plain.sh could not be started (ENOEXEC: a script needs a #! line naming its interpreter); extprov still serves the previous identity`,
    );
    expect(await server.stop()).toBe(0);
  });

  test("answers 500 when the hook was removed after the start, saying so", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["gone.sh"] });
    writeHook(folder, "gone.sh", ["exit 0"]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });
    rmSync(join(folder, "gone.sh"));

    const message = await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 500);

    expect(message).toBe(
      `the reprovision hook ${folder}/gone.sh could not be started (ENOENT: it is gone since extprov loaded it; put it back, then reload); extprov still serves the previous identity`,
    );
    expect(await server.stop()).toBe(0);
  });

  test("answers 500 when the configuration the hook left is invalid, and keeps the old identity", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["break.sh"] });
    writeHook(folder, "break.sh", [`rm '${folder}/device.key'`]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const message = await expectErrorResponse(await fetchUnix(socket, reprovisionPath), 500);

    expect(message).toStartWith(
      "the reprovision hook succeeded, but the configuration it left cannot be loaded: ",
    );
    expect(message).toContain(
      `${folder}/<the rest, not shown as it may be a secret>: does not exist`,
    );
    expect(message).toEndWith("; extprov still serves the previous identity");
    expect((await info(socket)).credentials.key).toBe(key);
    expect(await server.stop()).toBe(0);
  });
});

describe("requests during a reprovision", () => {
  test("a provisioning request waits for the hook and gets the new identity", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["slow.sh"] });
    const nextKey = prepareNext(folder, socket, second, {});
    const gate = join(folder, "release");
    writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate), ...switchLines(folder)]);
    const args = ["serve", "--config", config, "--log-level", "debug"];
    const server = await startServer({ args, secrets: [key, nextKey] });

    const reprovision = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    const waiting = info(socket);
    await server.waitFor("request waits for the running reprovision");
    release(gate);

    expect((await reprovision).status).toBe(200);
    expect((await waiting).deviceId).toBe(second.deviceId);
    expect(await server.stop()).toBe(0);
  });

  test("SIGHUPs during the hook are folded into the reprovision's one reload", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["slow.sh"] });
    const gate = join(folder, "release");
    writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate)]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const reprovision = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    for (const count of [1, 2, 3]) {
      server.process.kill("SIGHUP");
      await server.waitFor("reload queued trigger=SIGHUP", undefined, count);
    }
    release(gate);

    expect((await reprovision).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(server.count(" reloaded ")).toBe(1);
    expect(server.output()).toContain("reloaded trigger=reprovision");
  });

  test("a SIGHUP during a hook that fails still reloads afterwards", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["slow.sh"] });
    const gate = join(folder, "release");
    writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate), "exit 1"]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const reprovision = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    server.process.kill("SIGHUP");
    await server.waitFor("reload queued trigger=SIGHUP");
    release(gate);

    await expectErrorResponse(await reprovision, 500);
    expect(await server.stop()).toBe(0);
    expect(server.count(" reloaded ")).toBe(1);
    expect(server.output()).toContain('reloaded trigger="SIGHUP during reprovision"');
  });

  test("a second notice during a reprovision joins it rather than running the hook again", async () => {
    const { folder, socket, key, config } = prepare(first, { hook: ["slow.sh"] });
    const gate = join(folder, "release");
    writeHook(folder, "slow.sh", ["echo waiting", ...waitForFile(gate)]);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const firstNotice = fetchUnix(socket, reprovisionPath);
    await server.waitFor("line=waiting");
    const secondNotice = fetchUnix(socket, reprovisionPath, { method: "POST" });
    await server.waitFor("reprovision joined");
    release(gate);

    expect([(await firstNotice).status, (await secondNotice).status]).toEqual([200, 200]);
    expect(await server.stop()).toBe(0);
    expect(server.count("hook started")).toBe(1);
  });
});

describe("the hook's configuration", () => {
  const refusals: [string, (folder: string) => string[], string][] = [
    [
      "a hook that does not exist",
      () => ["missing.sh"],
      "/<the rest, not shown as it may be a secret>: does not exist; install the hook there",
    ],
    [
      "a hook that is not executable",
      (folder) => [chmodded(folder, "plain.sh", 0o600)],
      "plain.sh: is not executable by the user extprov runs as",
    ],
    ["an empty hook list", () => [], "/reprovision/hook: must not be an empty list"],
  ];
  // A group its trusted users alone belong to is no other user: this one needs root.
  if (process.geteuid?.() === 0) {
    refusals.push([
      "a hook a group of other users may change",
      (folder) => {
        const hook = chmodded(folder, "open.sh", 0o770);
        giveToSharedGroup(hook);
        return [hook];
      },
      "open.sh: mode 0770 lets other users change a program",
    ]);
  }

  for (const [name, hook, expected] of refusals) {
    test(`refuses to start with ${name}`, async () => {
      const folder = tempDir();
      const key = newSymmetricKey();
      writeSecret(folder, "device.key", key);
      const config = writeConfig(
        folder,
        documentFor(join(folder, "s.sock"), first, { hook: hook(folder) }),
      );

      const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

      expect(result.code).toBe(3);
      expect(result.output).toContain(expected);
      expect(existsSync(join(folder, "s.sock"))).toBe(false);
    });
  }
});

/** Resolves once `done()` holds; fails the test after 5 s. */
async function waitUntil(done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 20) {
    if (waited > 5_000) throw new Error("condition not met within 5 s");
    await Bun.sleep(20);
  }
}

/** A killed process stays a zombie until its new parent (init) reaps it. */
function isZombie(pid: string): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

function chmodded(folder: string, name: string, mode: number): string {
  const path = writeHook(folder, name, ["true"]);
  chmodSync(path, mode);
  return path;
}
