/**
 * SIGHUP reloads after the configuration or a secret file was broken: deleted, emptied,
 * cut short, made readable by everyone, or replaced by a FIFO. Each reload fails with one
 * line naming the file and field, the last good key is still served, and a reload after
 * the repair serves the new key.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";
import { countFaults } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const firstKey = newSymmetricKey();
const secondKey = newSymmetricKey();
let folder: string;
let socket: string;
let config: string;
let configText: string;
let keyFile: string;
let server: RunningServer;

beforeAll(async () => {
  folder = tempDir();
  socket = join(folder, "external.sock");
  keyFile = writeSecret(folder, "device.key", `${firstKey}\n`);
  config = writeConfig(folder, {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "reload-device" },
    credentials: { symmetricKey: { file: keyFile } },
    listen: { endpoint: `unix://${socket}`, socket: { mode: "0600" } },
  });
  configText = readFileSync(config, "utf8");
  server = await startServer({
    args: ["serve", "--config", config],
    secrets: [firstKey, secondKey],
  });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function count(text: string): number {
  return server.output().split(text).length - 1;
}

/** Sends SIGHUP and waits for the reload's outcome; returns the new "reload failed" lines. */
async function reload(): Promise<string[]> {
  const [failed, reloaded] = [count("reload failed"), count(" reloaded trigger=")];
  server.process.kill("SIGHUP");

  const deadline = performance.now() + 10_000;
  while (
    count("reload failed") === failed &&
    count(" reloaded trigger=") === reloaded &&
    performance.now() < deadline
  ) {
    await Bun.sleep(20);
  }

  return server
    .output()
    .split("\n")
    .filter((line) => line.includes("reload failed"))
    .slice(failed);
}

async function servedKey(): Promise<string> {
  const response = await fetchUnix(socket, provisioningPath);
  expect(response.status).toBe(200);
  return ((await response.json()) as { credentials: { key: string } }).credentials.key;
}

const faults: [string, () => void, string][] = [
  [
    "the key file emptied",
    () => truncateSync(keyFile, 0),
    `/credentials/symmetricKey/file: ${"KEY"}: is empty; write the secret into it`,
  ],
  [
    "the key file deleted",
    () => rmSync(keyFile),
    // The deleted file's name is no longer a real one: only its folder is shown.
    `/credentials/symmetricKey/file: ${"KEYFOLDER"}/<the rest, not shown as it may be a secret>: does not exist`,
  ],
  [
    "the key file made readable by every user",
    () => chmodSync(keyFile, 0o644),
    "mode 0644 lets every user on the device use it",
  ],
  [
    "the key file cut in half",
    () => truncateSync(keyFile, 20),
    `/credentials/symmetricKey/file: ${"KEY"}: the key decodes to 15 bytes`,
  ],
  ["the configuration deleted", () => rmSync(config), `${"CONFIG"}: cannot read the file (ENOENT)`],
  [
    "the configuration emptied",
    () => truncateSync(config, 0),
    "holds no settings (it is empty or only comments)",
  ],
  [
    "the configuration cut short mid-line",
    () => writeFileSync(config, configText.slice(0, configText.indexOf("symmetricKey") + 6)),
    "CONFIG: /credentials: expected a mapping of fields",
  ],
  [
    "the configuration replaced by a FIFO, which must not block the server",
    () => {
      rmSync(config);
      Bun.spawnSync(["mkfifo", "-m", "0600", config]);
    },
    "CONFIG: is not a regular file",
  ],
];

describe("a reload after a fault", () => {
  for (const [what, inject, message] of faults) {
    test(`${what}: fails with one precise line and keeps serving the last good key`, async () => {
      inject();
      countFaults();

      const failures = await reload();

      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(
        /reload failed, still serving the last good state trigger=SIGHUP: /,
      );
      const expected = message
        .replace("KEYFOLDER", dirname(keyFile))
        .replace("KEY", keyFile)
        .replace("CONFIG", config);
      expect(failures[0]).toContain(expected);
      expect(await servedKey()).toBe(firstKey);

      rmSync(config, { force: true });
      writeFileSync(config, configText, { mode: 0o600 });
      writeSecret(folder, "device.key", `${firstKey}\n`);
    });
  }

  test("after the repair, a reload serves the new key", async () => {
    writeSecret(folder, "device.key", `${secondKey}\n`);

    expect(await reload()).toEqual([]);
    expect(await servedKey()).toBe(secondKey);
    expect(server.output()).not.toContain("    at ");
  });
});
