/**
 * Reloading while serving: SIGHUP (or `extprov reload` through the pid file) re-reads the
 * configuration and every credential and swaps them in whole; a broken reload keeps the
 * last good state. Clients asking all along never see a failed request.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { makeCertificate, newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";

const device = { hubName: "test-hub.azure-devices.net", deviceId: "reload-device" };

function keyFileConfig(folder: string, key: string) {
  const socket = join(folder, "external.sock");
  writeSecret(folder, "device.key", key);
  const document = {
    device,
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
  };
  return { socket, config: writeConfig(folder, document), document };
}

async function servedKey(socket: string): Promise<string> {
  const response = await fetchUnix(socket, provisioningPath);
  expect(response.status).toBe(200);
  return ((await response.json()) as { credentials: { key: string } }).credentials.key;
}

/** Replaces a file the way an operator's tooling should: a new file, then rename. */
function replaceSecret(folder: string, name: string, content: string): void {
  writeSecret(folder, `${name}.new`, content);
  renameSync(join(folder, `${name}.new`), join(folder, name));
}

describe("a reload on SIGHUP", () => {
  test("rotates the key while clients keep asking: no request fails, and the new key follows the reloaded line", async () => {
    const folder = tempDir();
    const oldKey = newSymmetricKey();
    const newKey = newSymmetricKey();
    const { socket, config } = keyFileConfig(folder, oldKey);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [oldKey, newKey],
    });

    let reloadSeen = false;
    const answers: { key: string; askedAfterReload: boolean }[] = [];
    const failures: string[] = [];
    const enough = { before: Promise.withResolvers<void>(), after: Promise.withResolvers<void>() };

    const client = async () => {
      for (let round = 0; round < 3000; round++) {
        const askedAfterReload = reloadSeen;
        try {
          answers.push({ key: await servedKey(socket), askedAfterReload });
        } catch (error) {
          failures.push(String(error));
        }
        if (answers.length >= 50) enough.before.resolve();
        if (answers.filter((answer) => answer.askedAfterReload).length >= 50) {
          return enough.after.resolve();
        }
      }
      enough.after.resolve();
    };
    const clients = [client(), client(), client(), client()];

    await enough.before.promise;
    replaceSecret(folder, "device.key", newKey);
    server.process.kill("SIGHUP");
    await server.waitFor(" reloaded trigger=SIGHUP");
    reloadSeen = true;
    await enough.after.promise;
    await Promise.all(clients);

    expect(failures).toEqual([]);
    expect(answers.every((answer) => answer.key === oldKey || answer.key === newKey)).toBe(true);
    expect(answers.some((answer) => answer.key === oldKey)).toBe(true);
    expect(answers.filter((answer) => answer.askedAfterReload).length).toBeGreaterThanOrEqual(50);
    expect(answers.filter((answer) => answer.askedAfterReload && answer.key !== newKey)).toEqual(
      [],
    );
    expect(await server.stop()).toBe(0);
  });

  const broken: [string, (folder: string, document: Record<string, unknown>) => void, string][] = [
    [
      "invalid YAML",
      (folder) => writeFileSync(join(folder, "config.yaml"), "device: [unclosed\n"),
      "not valid YAML near line 1",
    ],
    [
      "a missing key file",
      (folder) => unlinkSync(join(folder, "device.key")),
      "/<the rest, not shown as it may be a secret>: does not exist",
    ],
    [
      "a key file others can read",
      (folder) => writeSecret(folder, "device.key", newSymmetricKey(), 0o644),
      "mode 0644 lets every user on the device use it",
    ],
    [
      "an unknown field",
      (folder, document) => writeConfig(folder, { ...document, reprovison: {} }),
      "/reprovison: unknown field",
    ],
  ];

  for (const [name, breakIt, expected] of broken) {
    test(`after ${name} keeps serving the old key and says why`, async () => {
      const folder = tempDir();
      const key = newSymmetricKey();
      const { socket, config, document } = keyFileConfig(folder, key);
      const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

      breakIt(folder, document);
      server.process.kill("SIGHUP");
      await server.waitFor("reload failed, still serving the last good state");

      expect(await servedKey(socket)).toBe(key);
      expect(server.output()).toContain(expected);
      expect(await server.stop()).toBe(0);
    });
  }

  test("after a private key that does not match the certificate keeps serving the old pair", async () => {
    const folder = tempDir();
    const identity = makeCertificate({ commonName: "reload-device" });
    const other = makeCertificate({ commonName: "reload-device" });
    writeSecret(folder, "cert.pem", identity.certificatePem, 0o644);
    writeSecret(folder, "key.pem", identity.privateKeyPem);
    const socket = join(folder, "external.sock");
    const config = writeConfig(folder, {
      device,
      credentials: { x509: { source: "payload", certificate: "cert.pem", privateKey: "key.pem" } },
      listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    });
    const secrets = [identity.privateKeyPem, other.privateKeyPem];
    const server = await startServer({ args: ["serve", "--config", config], secrets });

    replaceSecret(folder, "key.pem", other.privateKeyPem);
    server.process.kill("SIGHUP");
    await server.waitFor("reload failed, still serving the last good state");
    const response = await fetchUnix(socket, provisioningPath);
    const credentials = ((await response.json()) as { credentials: Record<string, string> })
      .credentials;

    expect(Buffer.from(credentials.identityPrivateKey!, "base64").toString()).toBe(
      identity.privateKeyPem,
    );
    expect(server.output()).toContain(
      "the private key does not belong to the identity certificate",
    );
    expect(await server.stop()).toBe(0);
  });

  test("warns of a listen change on every reload until the restart, and not once it is undone", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const { config, document } = keyFileConfig(folder, key);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });
    const moved = {
      ...document,
      listen: { ...document.listen, endpoint: socketEndpoint(join(folder, "moved.sock")) },
    };
    const reloadWith = async (contents: typeof document, reloads: number) => {
      writeConfig(folder, contents);
      server.process.kill("SIGHUP");
      await server.waitFor(" reloaded ", 15_000, reloads);
    };

    await reloadWith(moved, 1);
    await reloadWith(moved, 2);
    await reloadWith(document, 3);

    // The warning follows its "reloaded" line: after the start none, then two, then none.
    const warnings = server
      .output()
      .split(" reloaded ")
      .map((part) => part.includes("listen settings changed"));
    expect(warnings).toEqual([false, true, true, false]);
    expect(await server.stop()).toBe(0);
  });

  test("recovers on the next SIGHUP once the problem is fixed", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const newKey = newSymmetricKey();
    const { socket, config } = keyFileConfig(folder, key);
    const server = await startServer({
      args: ["serve", "--config", config],
      secrets: [key, newKey],
    });
    unlinkSync(join(folder, "device.key"));
    server.process.kill("SIGHUP");
    await server.waitFor("reload failed");

    writeSecret(folder, "device.key", newKey);
    server.process.kill("SIGHUP");
    await server.waitFor(" reloaded ");

    expect(await servedKey(socket)).toBe(newKey);
    expect(await server.stop()).toBe(0);
  });
});

describe("extprov reload and the pid file", () => {
  test("serve --pid-file writes the pid, reload signals it, and stopping removes the file", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const newKey = newSymmetricKey();
    const pidFile = join(folder, "extprov.pid");
    const { socket, config } = keyFileConfig(folder, key);
    const server = await startServer({
      args: ["serve", "--config", config, "--pid-file", pidFile],
      secrets: [key, newKey],
    });
    expect(readFileSync(pidFile, "utf8")).toBe(`${server.process.pid}\n`);

    replaceSecret(folder, "device.key", newKey);
    const result = await runExtprov({ args: ["reload", "--pid-file", pidFile] });
    await server.waitFor(" reloaded trigger=SIGHUP");

    expect(result.code).toBe(0);
    expect(result.output).toBe(
      `sent SIGHUP to extprov (pid ${server.process.pid}); its log says whether the reload succeeded\n`,
    );
    expect(await servedKey(socket)).toBe(newKey);
    expect(await server.stop()).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  test("reload refuses a pid file that names a process other than extprov, and signals nothing", async () => {
    const folder = tempDir();
    const pidFile = join(folder, "extprov.pid");
    writeFileSync(pidFile, `${process.pid}\n`);

    const result = await runExtprov({ args: ["reload", "--pid-file", pidFile] });

    expect(result.code).toBe(6);
    expect(result.output).toContain(
      `reload failed: process ${process.pid} named in ${pidFile} is not extprov; the pid file is stale`,
    );
  });

  test("reload pointed at a file that is no pid file (here a key) says so and never advises removing it", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const keyFile = writeSecret(folder, "device.key", key);

    const result = await runExtprov({ args: ["reload", "--pid-file", keyFile], secrets: [key] });

    expect(result.code).toBe(6);
    expect(result.output).toContain(
      `reload failed: ${keyFile} holds no process id, so it is no pid file extprov wrote; check --pid-file`,
    );
    expect(result.output).not.toContain("remove");
    expect(readFileSync(keyFile, "utf8")).toBe(key);
  });

  test("reload says so when the pid file names no running process", async () => {
    const folder = tempDir();
    const pidFile = join(folder, "extprov.pid");
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    writeFileSync(pidFile, `${gone.pid}\n`);

    const result = await runExtprov({ args: ["reload", "--pid-file", pidFile] });

    expect(result.code).toBe(6);
    expect(result.output).toContain(
      `no process ${gone.pid} is running (pid file ${pidFile}); the pid file is stale`,
    );
  });

  test("reload says so when there is no pid file", async () => {
    const pidFile = join(tempDir(), "extprov.pid");

    const result = await runExtprov({ args: ["reload", "--pid-file", pidFile] });

    expect(result.code).toBe(6);
    expect(result.output).toContain(
      `cannot read the pid file ${pidFile} (ENOENT); is extprov running, started with this --pid-file?`,
    );
  });

  test("a second serve with the same pid file is refused while the first runs", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const pidFile = join(folder, "extprov.pid");
    const { config } = keyFileConfig(folder, key);
    const first = await startServer({
      args: ["serve", "--config", config, "--pid-file", pidFile],
      secrets: [key],
    });
    const otherFolder = tempDir();
    const { config: otherConfig, socket: otherSocket } = keyFileConfig(otherFolder, key);

    const second = await runExtprov({
      args: ["serve", "--config", otherConfig, "--pid-file", pidFile],
      secrets: [key],
    });

    expect(second.code).toBe(4);
    expect(second.output).toContain(
      `extprov already runs as pid ${first.process.pid} (pid file ${pidFile})`,
    );
    expect(existsSync(otherSocket)).toBe(false);
    expect(readFileSync(pidFile, "utf8")).toBe(`${first.process.pid}\n`);
    expect(await first.stop()).toBe(0);
  });

  test("options a command does not take are refused", async () => {
    const result = await runExtprov({ args: ["check", "--pid-file", "/nonexistent/extprov.pid"] });

    expect(result.code).toBe(2);
    expect(result.output).toContain("check does not take --pid-file");
  });
});
