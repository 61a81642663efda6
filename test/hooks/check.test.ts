/**
 * The hook's checks at every load (serve, check, reload), whatever
 * security.allowInsecureSecretFiles says. Real files with real modes in temporary folders.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync } from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { writeHook } from "../helpers/hooks.ts";
import { runExtprov } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";

const isRoot = process.getuid?.() === 0;
const device = { hubName: "test-hub.azure-devices.net", deviceId: "hook-device" };
const insecureSecretFiles = { security: { allowInsecureSecretFiles: true } };

/** A configuration in a new folder serving from device.key, with `hook` as its hook. */
function prepare(hook: string, extra: Record<string, unknown> = {}) {
  const folder = tempDir();
  const socket = join(folder, "external.sock");
  const key = newSymmetricKey();
  writeSecret(folder, "device.key", key);
  const config = writeConfig(folder, {
    device,
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    reprovision: { hook: [hook] },
    ...extra,
  });
  return { folder, socket, key, config };
}

/** A hook running `true` at `folder/name`, with `mode`. */
function hookIn(folder: string, name = "hook.sh", mode = 0o755): string {
  const path = writeHook(folder, name, ["true"]);
  chmodSync(path, mode);
  return path;
}

/** How a hook is made in `base`; returns the hook's path. */
type Layout = (base: string) => string;

interface Refusal {
  name: string;
  layout: Layout;
  expected: (base: string) => string;
  extra?: Record<string, unknown>;
  asRoot?: boolean;
}

const refusals: Refusal[] = [
  {
    name: "a hook every user may change, with security.allowInsecureSecretFiles",
    layout: (base) => hookIn(base, "open.sh", 0o777),
    expected: (base) =>
      `/reprovision/hook/0: ${base}/open.sh: mode 0777 lets other users change a program`,
    extra: insecureSecretFiles,
  },
  {
    name: "a hook owned by another user, with security.allowInsecureSecretFiles",
    layout: (base) => {
      const hook = hookIn(base);
      chownSync(hook, 65534, 65534);
      return hook;
    },
    expected: (base) => `${base}/hook.sh: is owned by uid 65534, who could change it`,
    extra: insecureSecretFiles,
    asRoot: true,
  },
];

describe("a hook others may change", () => {
  for (const { name, layout, expected, extra, asRoot } of refusals) {
    test.skipIf(asRoot === true && !isRoot)(`is refused by serve and check: ${name}`, async () => {
      const base = tempDir();
      const { socket, key, config } = prepare(layout(base), extra);

      const served = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });
      const checked = await runExtprov({ args: ["check", "--config", config], secrets: [key] });

      expect(served.code).toBe(3);
      expect(served.output).toContain(expected(base));
      expect(existsSync(socket)).toBe(false);
      expect(checked.code).toBe(3);
      expect(checked.output).toContain(expected(base));
    });
  }
});

const accepted: [string, Layout][] = [
  [
    "a hook its owner alone may change, with security.allowInsecureSecretFiles",
    (base) => hookIn(base, "hook.sh", 0o700),
  ],
];

describe("a hook only trusted users may change", () => {
  for (const [name, layout] of accepted) {
    test(`is accepted: ${name}`, async () => {
      const base = tempDir();
      const hook = layout(base);
      const { key, config } = prepare(hook, insecureSecretFiles);

      const checked = await runExtprov({ args: ["check", "--config", config], secrets: [key] });

      expect(checked.output).toContain(`reprovision: hook ${hook} (0 arguments`);
      expect(checked.code).toBe(0);
    });
  }
});
