/**
 * Who can connect, decided by the kernel from the socket's owner, group and mode; and the
 * drop from root to the service user. These need root to give files away and to run
 * clients as other users (setpriv); without root they are skipped with the reason.
 */
import { describe, expect, test } from "bun:test";
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { curlUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, spawnExtprov, startServer } from "../helpers/server.ts";
import { sharedTempDir, tempDir } from "../helpers/temp.ts";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("access tests skipped: they need root to chown sockets and switch users");

// Debian's stock accounts: daemon (1:1) owns the socket, nobody (65534) is a stranger.
const daemon = 1;
const nobody = 65534;

function as(uid: number, gid: number, groups: number[] = []): string[] {
  const supplementary = groups.length > 0 ? [`--groups=${groups.join(",")}`] : ["--clear-groups"];
  return ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, ...supplementary, "--"];
}

function serviceConfig(folder: string, key: string, extra: Record<string, unknown>) {
  const keyFile = writeSecret(folder, "device.key", key);
  return {
    keyFile,
    config: writeConfig(
      folder,
      {
        device: { hubName: "test-hub.azure-devices.net", deviceId: "access-device" },
        credentials: { symmetricKey: { file: keyFile } },
        listen: {
          endpoint: socketEndpoint(join(folder, "external.sock")),
          socket: { owner: daemon, group: daemon, mode: "0660" },
        },
        ...extra,
      },
      "config.yaml",
      0o644,
    ),
  };
}

describe.skipIf(!isRoot)("connecting as other users", () => {
  test("only the socket's owner and members of its group get through", async () => {
    const folder = sharedTempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const { config } = serviceConfig(folder, key, {});
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const stats = lstatSync(socket);
    const owner = curlUnix(socket, provisioningPath, [], as(daemon, daemon));
    const groupMember = curlUnix(socket, provisioningPath, [], as(nobody, nobody, [daemon]));
    const stranger = curlUnix(socket, provisioningPath, [], as(nobody, nobody));

    expect([stats.uid, stats.gid, stats.mode & 0o7777]).toEqual([daemon, daemon, 0o660]);
    expect(owner.status).toBe(200);
    expect(groupMember.status).toBe(200);
    expect(stranger.exitCode).toBe(7);
    expect(stranger.stderr).toContain("Couldn't connect");
    expect(stranger.body).not.toContain(key);
    expect(await server.stop()).toBe(0);
  });
});

/**
 * As nobody (python3, woken by inotify), swaps every entry whose name starts with `prefix`
 * that appears in `folder` for a link to `victim`, as fast as it can.
 */
async function swapNewEntries(folder: string, prefix: string, victim: string) {
  const script = `
import ctypes, os, struct, sys
folder, prefix, victim = sys.argv[1], sys.argv[2], sys.argv[3]
libc = ctypes.CDLL("libc.so.6", use_errno=True)
events = libc.inotify_init()
libc.inotify_add_watch(events, folder.encode(), 0x100)  # IN_CREATE
print("ready", flush=True)
while True:
    data, at = os.read(events, 65536), 0
    while at < len(data):
        length = struct.unpack_from("iIII", data, at)[3]
        name = data[at + 16 : at + 16 + length].rstrip(b"\\0").decode()
        at += 16 + length
        if not name.startswith(prefix) or name.endswith((".moved", ".tmp")):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rename(path, path + ".moved")
            os.symlink(victim, path + ".tmp")
            os.rename(path + ".tmp", path)
        except OSError:
            pass
`;
  const child = Bun.spawn(
    [...as(nobody, nobody), "/usr/bin/python3", "-c", script, folder, prefix, victim],
    {
      stdout: "pipe",
    },
  );
  const reader = child.stdout.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toStartWith("ready");

  return {
    async [Symbol.asyncDispose]() {
      child.kill();
      await child.exited;
    },
  };
}

/** A runAs nobody configuration whose socket is at `socket` under a folder nobody owns. */
function socketUnderNobodysFolder(socket: string) {
  const folder = sharedTempDir();
  const key = newSymmetricKey();
  const { config, keyFile } = serviceConfig(folder, key, { runAs: { user: "nobody" } });
  chownSync(keyFile, nobody, nobody);
  const owned = join(folder, "owned");
  mkdirSync(owned, { mode: 0o755 });
  chownSync(owned, nobody, nobody);
  const text = readFileSync(config, "utf8").replace(
    join(folder, "external.sock"),
    join(owned, socket),
  );
  writeFileSync(config, text);
  return { owned, key, config };
}

/** Ten starts as root: each serves (a swap came too late) or is refused (exit 4), nothing else. */
async function startRepeatedly(config: string, key: string, beforeEach = () => {}) {
  for (let start = 0; start < 10; start++) {
    beforeEach();
    const server = spawnExtprov({ args: ["serve", "--config", config], secrets: [key] });
    const served = await server.waitFor(" serving endpoint=").then(
      () => true,
      () => false,
    );
    expect(await server.stop()).toBe(served ? 0 : 4);
  }
}

describe.skipIf(!isRoot)("dropping root", () => {
  test("switches to runAs after binding, before serving, and reads the key as that user", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { config, keyFile } = serviceConfig(folder, key, { runAs: { user: "nobody" } });
    chownSync(keyFile, nobody, nobody);
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const status = readFileSync(`/proc/${server.process.pid}/status`, "utf8");

    expect(status).toMatch(/^Uid:\t65534\t65534\t65534\t65534$/m);
    expect(status).toMatch(/^Gid:\t65534\t65534\t65534\t65534$/m);
    expect(status).toMatch(/^Groups:\t65534 ?$/m);
    expect(server.output()).toContain("dropped privileges uid=65534 gid=65534 user=nobody");
    expect(
      curlUnix(join(folder, "external.sock"), provisioningPath, [], as(daemon, daemon)).status,
    ).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  test("creates a missing socket folder for the runAs user, who removes the socket at the stop", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { config, keyFile } = serviceConfig(folder, key, { runAs: { user: "nobody" } });
    chownSync(keyFile, nobody, nobody);
    const socketFolder = join(folder, "run");
    const socket = join(socketFolder, "external.sock");
    writeFileSync(
      config,
      readFileSync(config, "utf8").replace(join(folder, "external.sock"), socket),
    );
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const stats = lstatSync(socketFolder);
    expect([stats.uid, stats.gid, stats.mode & 0o7777]).toEqual([nobody, nobody, 0o755]);
    expect(await server.stop()).toBe(0);
    expect(server.output()).not.toContain("socket left in place");
    expect(existsSync(socket)).toBe(false);
  });

  // The socket folder is the service user's: it could swap what root binds there for a link
  // to any file between bind and chown, had root bound the socket in that folder directly.
  test("the service user cannot make root give it a file through the socket folder", async () => {
    const { owned, key, config } = socketUnderNobodysFolder("s.sock");
    const victim = join(tempDir(), "victim");
    writeFileSync(victim, "root's\n", { mode: 0o600 });
    await using _swapper = await swapNewEntries(owned, ".extprov-", victim);

    await startRepeatedly(config, key);

    const stats = lstatSync(victim);
    expect([stats.uid, stats.gid, stats.mode & 0o7777]).toEqual([0, 0, 0o600]);
  });

  // Created by root for the service user: given away through a descriptor, never by name.
  test("whoever may write in the socket folder's parent cannot make root give another folder away", async () => {
    const { owned, key, config } = socketUnderNobodysFolder("run/s.sock");
    const victim = join(tempDir(), "victim");
    mkdirSync(victim, { mode: 0o755 });
    await using _swapper = await swapNewEntries(owned, "run", victim);

    await startRepeatedly(config, key, () =>
      rmSync(join(owned, "run"), { recursive: true, force: true }),
    );

    const stats = lstatSync(victim);
    expect([stats.uid, stats.gid]).toEqual([0, 0]);
  });

  // What makes the swap above lose every time: the socket is bound, given away and checked
  // inside a folder only root may enter, named through a descriptor of it.
  test("binds the socket through a private folder, never by a name in the socket folder", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { config } = serviceConfig(folder, key, {});
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    const bound = readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      .filter((line) => line.includes(".extprov-"))
      .map((line) => line.split(" ").at(-1)!);

    expect(bound.some((name) => /^\/proc\/self\/fd\/\d+\/\.extprov-/.test(name))).toBe(true);
    expect(bound.filter((name) => name.startsWith(folder))).toEqual([]);
    expect(readdirSync(folder).filter((name) => name.startsWith(".extprov-"))).toEqual([]);
    expect(await server.stop()).toBe(0);
  });

  test("refuses to serve when the runAs user cannot read the key, and removes its socket", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { config } = serviceConfig(folder, key, { runAs: { user: "nobody" } });

    const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `cannot be read by this user, read as the service user nobody (uid ${nobody}); let the service user nobody (uid ${nobody}) read it, as every reload does: give the file to group ${nobody} with mode 0640`,
    );
    expect(existsSync(join(folder, "external.sock"))).toBe(false);
  });

  // check answers for serve: install.sh starts the service only when check passes.
  test("check refuses, as serve does, what the runAs user cannot read", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { keyFile, config } = serviceConfig(folder, key, { runAs: { user: "nobody" } });
    const unreadableConfig = writeConfig(
      folder,
      {
        device: { hubName: "test-hub.azure-devices.net", deviceId: "access-device" },
        credentials: { symmetricKey: { file: keyFile } },
        listen: { endpoint: socketEndpoint(join(folder, "external.sock")) },
        runAs: { user: "nobody" },
      },
      "closed.yaml",
      0o600,
    );

    const keyResult = await runExtprov({ args: ["check", "--config", config], secrets: [key] });
    const closed = await runExtprov({
      args: ["check", "--config", unreadableConfig],
      secrets: [key],
    });

    expect(keyResult.code).toBe(3);
    expect(keyResult.output).toContain(
      `check failed: ${config}: /credentials/symmetricKey/file: ${keyFile}: cannot be read by this user, read as the service user nobody (uid ${nobody})`,
    );
    expect(closed.code).toBe(3);
    expect(closed.output).toContain(
      `check failed: ${unreadableConfig}: cannot read the file (EACCES), read as the service user nobody (uid ${nobody}); let the service user nobody`,
    );
  });

  test("refuses an unknown runAs user before binding", async () => {
    const folder = sharedTempDir();
    const key = newSymmetricKey();
    const { config } = serviceConfig(folder, key, { runAs: { user: "no-such-user-extprov" } });

    const result = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain("/runAs/user: no such user on this system");
    expect(existsSync(join(folder, "external.sock"))).toBe(false);
  });
});
