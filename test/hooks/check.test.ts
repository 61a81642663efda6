/**
 * The hook's checks at every load (serve, check, reload): the program itself and every
 * folder and link on the way to it, whatever security.allowInsecureSecretFiles says. Real
 * files with real modes in temporary folders, which sit in /tmp (root's, sticky) and are
 * root's when the tests run as root.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { writeHook } from "../helpers/hooks.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";
import { giveToSharedGroup } from "../helpers/users.ts";

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

/** `base/name`, made with `mode` (set after creation, so the umask does not interfere). */
function folderIn(base: string, name: string, mode: number): string {
  const folder = join(base, name);
  mkdirSync(folder);
  chmodSync(folder, mode);
  return folder;
}

/** A hook running `true` at `folder/name`, with `mode`. */
function hookIn(folder: string, name = "hook.sh", mode = 0o755): string {
  const path = writeHook(folder, name, ["true"]);
  chmodSync(path, mode);
  return path;
}

/** A symbolic link at `path` to `target`, as written (relative to the link's folder). */
function linkAt(path: string, target: string): string {
  symlinkSync(target, path);
  return path;
}

/** How a layout of folders, links and a hook is made in `base`; returns the hook's path. */
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
  {
    name: "a safe hook in a folder every user may write",
    layout: (base) => hookIn(folderIn(base, "open", 0o777)),
    expected: (base) =>
      `/reprovision/hook/0: ${base}/open/hook.sh: ${base}/open, a folder on its path, has mode 0777: other users may put another program in the hook's place; chmod go-w ${base}/open, or move the hook to a folder only root may change`,
  },
  {
    name: "a safe hook in a folder every user may write, with security.allowInsecureSecretFiles",
    layout: (base) => hookIn(folderIn(base, "open", 0o777)),
    expected: (base) => `${base}/open, a folder on its path, has mode 0777`,
    extra: insecureSecretFiles,
  },
  {
    name: "a safe hook in a folder a group of other users may write",
    layout: (base) => {
      const shared = folderIn(base, "shared", 0o775);
      giveToSharedGroup(shared);
      return hookIn(shared);
    },
    expected: (base) => `${base}/shared, a folder on its path, has mode 0775`,
    asRoot: true,
  },
  {
    name: "a safe hook in a safe folder inside one every user may write",
    layout: (base) => hookIn(folderIn(folderIn(base, "open", 0o777), "hooks", 0o755)),
    expected: (base) => `${base}/open/hooks/hook.sh: ${base}/open, a folder on its path,`,
  },
  {
    name: "a safe hook in a folder owned by another user",
    layout: (base) => {
      const folder = folderIn(base, "theirs", 0o755);
      chownSync(folder, 65534, 65534);
      return hookIn(folder);
    },
    expected: (base) =>
      `${base}/theirs, a folder on its path, is owned by uid 65534, who could put another program in the hook's place; chown it to root or to the user extprov runs as, or move the hook to a folder only root may change`,
    asRoot: true,
  },
  {
    name: "a folder owned by another user in a sticky folder every user may write",
    layout: (base) => {
      const folder = folderIn(folderIn(base, "tmp", 0o1777), "theirs", 0o755);
      chownSync(folder, 65534, 65534);
      return hookIn(folder);
    },
    expected: (base) => `${base}/tmp/theirs, a folder on its path, is owned by uid 65534`,
    asRoot: true,
  },
  {
    name: "a link in a safe folder to a hook in a folder every user may write",
    layout: (base) => {
      hookIn(folderIn(base, "open", 0o777));
      return linkAt(join(base, "link.sh"), "open/hook.sh");
    },
    expected: (base) => `${base}/link.sh: ${base}/open, a folder on its path, has mode 0777`,
  },
  {
    name: "a linked folder that leads into a folder every user may write",
    layout: (base) => {
      hookIn(folderIn(folderIn(base, "open", 0o777), "real", 0o755));
      return join(linkAt(join(base, "hooks"), join(base, "open", "real")), "hook.sh");
    },
    expected: (base) => `${base}/open, a folder on its path, has mode 0777`,
  },
  {
    name: "a link in a folder every user may write, to a safe hook",
    layout: (base) => linkAt(join(folderIn(base, "open", 0o777), "link.sh"), hookIn(base)),
    expected: (base) => `${base}/open, a folder on its path, has mode 0777`,
  },
  {
    name: "a chain of links that passes through a folder every user may write",
    layout: (base) => {
      hookIn(base);
      linkAt(join(folderIn(base, "open", 0o777), "middle"), "../hook.sh");
      return linkAt(join(base, "link.sh"), "open/middle");
    },
    expected: (base) => `${base}/open, a folder on its path, has mode 0777`,
  },
  {
    name: "a link owned by another user in a sticky folder every user may write",
    layout: (base) => {
      const link = linkAt(join(folderIn(base, "tmp", 0o1777), "link.sh"), hookIn(base));
      lchownSync(link, 65534, 65534);
      return link;
    },
    expected: (base) =>
      `${base}/tmp/link.sh, a symbolic link on its path, is owned by uid 65534, who may replace it in ${base}/tmp though others may not; chown -h it to root or to the user extprov runs as, or point the configuration at the file itself`,
    asRoot: true,
  },
];

describe("a hook whose file, folders or links others may change", () => {
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

// `["/bin/sh", script]` runs the script: it is held to the program's rules.
describe("a file a hook's argument names", () => {
  test("is refused by serve and check when every user may change it", async () => {
    const base = tempDir();
    const script = hookIn(folderIn(base, "open", 0o777), "reprovision.sh", 0o755);
    const { socket, key, config } = prepare("/bin/sh", {
      reprovision: { hook: ["/bin/sh", script] },
    });
    const expected = `/reprovision/hook/1: ${script}: ${base}/open, a folder on its path, has mode 0777: other users may put another file in the hook's place`;

    const served = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });
    const checked = await runExtprov({ args: ["check", "--config", config], secrets: [key] });

    expect(served.code).toBe(3);
    expect(served.output).toContain(expected);
    expect(existsSync(socket)).toBe(false);
    expect(checked.code).toBe(3);
    expect(checked.output).toContain(expected);
  });

  test("that does not exist, or an argument that is no path, is left to the hook", async () => {
    const { config, key } = prepare("/bin/sh", {
      reprovision: { hook: ["/bin/sh", "-c", "true", "/no/such/file"] },
    });

    const checked = await runExtprov({ args: ["check", "--config", config], secrets: [key] });

    expect(checked.code).toBe(0);
  });
});

const accepted: [string, Layout][] = [
  [
    "a hook its owner alone may change, with security.allowInsecureSecretFiles",
    (base) => hookIn(base, "hook.sh", 0o700),
  ],
  [
    "a safe folder inside a sticky folder every user may write, as in /tmp",
    (base) => hookIn(folderIn(folderIn(base, "tmp", 0o1777), "hooks", 0o755)),
  ],
  [
    "a safe hook directly in a sticky folder every user may write",
    (base) => hookIn(folderIn(base, "tmp", 0o1777)),
  ],
  [
    "a link in a safe folder to a safe hook in a safe folder",
    (base) => {
      hookIn(folderIn(base, "real", 0o755));
      return linkAt(join(folderIn(base, "bin", 0o755), "hook"), "../real/hook.sh");
    },
  ],
  [
    "a link of its own in a sticky folder every user may write, to a safe hook",
    (base) => linkAt(join(folderIn(base, "tmp", 0o1777), "link.sh"), hookIn(base)),
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

describe("a reload after the hook's folder was opened to every user", () => {
  test("keeps serving the last good state and says which folder", async () => {
    const base = tempDir();
    const hooks = folderIn(base, "hooks", 0o755);
    const { socket, key, config } = prepare(hookIn(hooks));
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    chmodSync(hooks, 0o777);
    server.process.kill("SIGHUP");
    await server.waitFor("reload failed, still serving the last good state");

    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(server.output()).toContain(`${hooks}, a folder on its path, has mode 0777`);
    expect(await server.stop()).toBe(0);
  });
});
