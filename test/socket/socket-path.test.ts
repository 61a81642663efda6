/**
 * The socket file: created with exactly the configured mode, never replacing anything a
 * user owns, removed on SIGTERM and SIGINT.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { curlUnix, fetchUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, spawnExtprov, startServer } from "../helpers/server.ts";
import { mountSkipReason, unmount } from "../helpers/mount.ts";
import { prepareSocketPath } from "../../src/socket/path.ts";
import { bindUnixSocket } from "../../src/socket/bind.ts";
import { folderForPathOf, sharedTempDir, tempDir } from "../helpers/temp.ts";
import { asNobody, asNobodySkipReason, giveToSharedGroup } from "../helpers/users.ts";

const key = newSymmetricKey();
/** Bind mounts a test made, undone at the end even if the test did not finish. */
const bindMounts: string[] = [];
afterAll(() => bindMounts.forEach(unmount));

function configFor(
  folder: string,
  socket: string,
  socketSettings: Record<string, unknown> = { mode: "0600" },
) {
  const document = symmetricKeyConfig(socket, key);
  (document.listen as Record<string, unknown>).socket = socketSettings;
  return writeConfig(folder, document);
}

/**
 * A socket bound at `path` by another process (python3) that takes no connection: a
 * datagram socket, or a stream socket whose backlog is full. Bun reports both as a
 * refused connection, as it does a stale socket.
 */
async function holdSocket(path: string, kind: "datagram" | "full backlog") {
  const script = `
import socket, sys, time
path, kind = sys.argv[1], sys.argv[2]
if kind == "datagram":
    held = [socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)]
    held[0].bind(path)
else:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    held = [server]
    for _ in range(3):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:
            pass
        held.append(client)
print("ready", flush=True)
time.sleep(60)
`;
  const child = Bun.spawn(["python3", "-c", script, path, kind], { stdout: "pipe" });
  let said = "";
  for await (const chunk of child.stdout) {
    said += new TextDecoder().decode(chunk);
    if (said.includes("\n")) break;
  }
  expect(said).toBe("ready\n");

  return {
    process: child,
    async [Symbol.asyncDispose]() {
      child.kill();
      await child.exited;
    },
  };
}

/** A socket file at `path` whose program has exited, as a crash leaves it (python3). */
function bindAndLeave(path: string): void {
  const bound = Bun.spawnSync([
    "python3",
    "-c",
    "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
    path,
  ]);
  expect(bound.exitCode).toBe(0);
}

/** The status of a provisioning request, retried while the backlog is still full. */
async function statusOnceQueueIsServed(socket: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await fetchUnix(socket, provisioningPath)).status;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || attempt === 100) throw error;
      await Bun.sleep(50);
    }
  }
}

/** Connections queued at `path` (python3) until its server's backlog takes no more. */
async function fillBacklog(path: string) {
  const script = `
import socket, sys, time
held = []
while len(held) < 20000:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.setblocking(False)
    try:
        client.connect(sys.argv[1])
    except BlockingIOError:
        break
    held.append(client)
print("full", len(held), flush=True)
time.sleep(60)
`;
  const child = Bun.spawn(["python3", "-c", script, path], { stdout: "pipe" });
  let said = "";
  for await (const chunk of child.stdout) {
    said += new TextDecoder().decode(chunk);
    if (said.includes("\n")) break;
  }
  expect(said).toMatch(/^full \d+\n$/);

  return {
    async [Symbol.asyncDispose]() {
      child.kill();
      await child.exited;
    },
  };
}

/**
 * Another program holds a datagram socket bound at `held`; extprov, configured with
 * `configured` (the same file by another name), refuses to start and check refuses too,
 * and the socket and its program are left alone.
 */
async function expectLeftAlone(folder: string, held: string, configured: string) {
  await using holder = await holdSocket(held, "datagram");

  const output = await refusedByServeAndCheck(folder, configured);

  expect(output).toContain(`${configured} is a socket that a running program still holds`);
  expect(lstatSync(configured).isSocket()).toBe(true);
  expect(holder.process.exitCode).toBeNull();
}

/** What serve refuses before binding, check refuses the same way without changing anything. */
async function refusedByServeAndCheck(folder: string, socket: string) {
  const output = await refusedStart(folder, socket);
  const refusal = /refused to start: (.*)/.exec(output)?.[1];
  expect(refusal).toBeDefined();

  const checked = await runExtprov({
    args: ["check", "--config", configFor(folder, socket)],
    secrets: [key],
  });
  expect(checked.code).toBe(4);
  expect(checked.output).toContain(`check failed: ${refusal}`);
  return output;
}

/** check as nobody, with the configuration startAsNobody wrote. */
function checkAsNobody(folder: string) {
  const config = join(folder, "config.yaml");
  return runExtprov({ args: ["check", "--config", config], secrets: [key], wrapper: asNobody });
}

/** serve as nobody (uid 65534), with a configuration nobody owns, in a folder root owns. */
function startAsNobody(folder: string, socket: string, socketSettings?: Record<string, unknown>) {
  const config = configFor(folder, socket, socketSettings);
  chownSync(config, 65534, 65534);

  return runExtprov({ args: ["serve", "--config", config], secrets: [key], wrapper: asNobody });
}

async function refusedStart(folder: string, socket: string) {
  const result = await runExtprov({
    args: ["serve", "--config", configFor(folder, socket)],
    secrets: [key],
  });
  expect(result.code).toBe(4);
  return result.output;
}

describe("the socket's mode", () => {
  for (const mode of ["0600", "0660", "0620"]) {
    test(`is exactly ${mode} when configured so, read back with lstat`, async () => {
      const folder = tempDir();
      const socket = join(folder, "external.sock");
      const server = await startServer({
        args: ["serve", "--config", configFor(folder, socket, { mode })],
        secrets: [key],
      });

      const stats = lstatSync(socket);

      expect(stats.isSocket()).toBe(true);
      expect((stats.mode & 0o7777).toString(8).padStart(4, "0")).toBe(mode);
      expect(stats.uid).toBe(process.getuid!());
      expect(stats.gid).toBe(process.getgid!());
      expect(await server.stop()).toBe(0);
    });
  }

  test("defaults to 0660", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const document = symmetricKeyConfig(socket, key);
    delete (document.listen as Record<string, unknown>).socket;
    const server = await startServer({
      args: ["serve", "--config", writeConfig(folder, document)],
      secrets: [key],
    });

    expect(lstatSync(socket).mode & 0o7777).toBe(0o660);
    expect(await server.stop()).toBe(0);
  });

  test("refuses a mode that opens the socket to every user, unless forced", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");

    const refused = await runExtprov({
      args: ["serve", "--config", configFor(folder, socket, { mode: "0666" })],
      secrets: [key],
    });

    expect(refused.code).toBe(3);
    expect(refused.output).toContain(
      "/listen/socket/mode: mode 0666 lets every user on the device read the device's credentials",
    );
    expect(existsSync(socket)).toBe(false);
  });

  test("accepts a world-open mode with security.allowWorldAccessibleSocket, with a warning", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const document = symmetricKeyConfig(socket, key, {
      security: { allowWorldAccessibleSocket: true },
    });
    (document.listen as Record<string, unknown>).socket = { mode: "0666" };
    const server = await startServer({
      args: ["serve", "--config", writeConfig(folder, document)],
      secrets: [key],
    });

    expect(lstatSync(socket).mode & 0o7777).toBe(0o666);
    expect(server.output()).toContain("warn  socket open to every user");
    expect(await server.stop()).toBe(0);
  });
});

describe("what already exists at the socket path", () => {
  test("a stale socket left by a crash is replaced", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const first = await startServer({
      args: ["serve", "--config", configFor(folder, socket)],
      secrets: [key],
    });
    first.process.kill("SIGKILL");
    await first.process.exited;
    expect(lstatSync(socket).isSocket()).toBe(true);

    const second = await startServer({
      args: ["serve", "--config", configFor(folder, socket)],
      secrets: [key],
    });

    expect(second.output()).toContain("removed stale socket");
    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });

  test("of several extprovs started at once over a stale socket, one serves and keeps its socket", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const config = configFor(folder, socket);

    for (let round = 0; round < 3; round++) {
      const crashed = await startServer({ args: ["serve", "--config", config], secrets: [key] });
      crashed.process.kill("SIGKILL");
      await crashed.process.exited;

      const starters = Array.from({ length: 5 }, () =>
        spawnExtprov({ args: ["serve", "--config", config], secrets: [key] }),
      );
      await Promise.race([
        Promise.all(
          starters.map((starter) => starter.waitFor(" serving endpoint=").catch(() => {})),
        ),
        Bun.sleep(20_000),
      ]);
      const serving = starters.filter((starter) => starter.process.exitCode === null);
      expect(serving).toHaveLength(1);

      // Each of the others saw the socket live, held, replaced under it, or taken first.
      for (const starter of starters.filter((starter) => starter !== serving[0])) {
        expect(starter.process.exitCode).toBe(4);
        expect(starter.output()).toContain("refused to start");
      }
      expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
      expect(serving[0]!.output()).not.toContain("socket lost");
      expect(await serving[0]!.stop()).toBe(0);
    }
  }, 90_000);

  // The moment the race above turns on, made to happen every time: while serve looks at a
  // stale socket, another start replaces it with its own (here one of its own stale ones).
  test("a socket that takes the stale one's place while serve looks at it is left alone", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    bindAndLeave(socket);

    const preparing = prepareSocketPath(socket, {
      trusted: [0, process.geteuid!()],
      creator: { uid: process.geteuid!(), gid: process.getegid!() },
    });
    unlinkSync(socket);
    bindAndLeave(socket);
    const replacement = lstatSync(socket).ino;

    expect(preparing).rejects.toThrow(
      `another socket took the place of the stale one at ${socket} while extprov started`,
    );
    await preparing.catch(() => {});
    expect(lstatSync(socket).ino).toBe(replacement);
  });

  // Everything after the checks goes through the folder as held then: a folder put at the
  // path afterwards (by whoever could) gets nothing, and the checked one gets the socket.
  test("binding goes to the socket folder as checked, whatever is at its path by then", async () => {
    const parent = tempDir();
    const checkedFolder = join(parent, "run");
    const moved = join(parent, "moved");
    const socket = join(checkedFolder, "s.sock");
    const me = { uid: process.geteuid!(), gid: process.getegid!() };
    const held = await prepareSocketPath(socket, { trusted: [0, me.uid], creator: me });

    renameSync(checkedFolder, moved);
    mkdirSync(checkedFolder);
    const bound = bindUnixSocket(socket, held, { ...me, mode: 0o600 }, (path) =>
      Bun.serve({ unix: path, fetch: () => new Response("held") }),
    );

    expect(lstatSync(join(moved, "s.sock")).isSocket()).toBe(true);
    expect(readdirSync(checkedFolder)).toEqual([]);
    expect(readdirSync(moved)).toEqual(["s.sock"]);
    bound.server.stop(true);
  });

  // /proc/net/unix lists a serving extprov's socket by the private name it was bound by
  // (bind.ts), not by the path it is linked at; at 107 bytes that name is even bound
  // through /proc/self/fd. A stopped extprov takes no connection once its backlog is full.
  for (const [what, folderFor] of [
    ["", () => tempDir()],
    [" on a 107-byte path", () => folderForPathOf(107, "e.sock")],
  ] as const) {
    test(`a stopped extprov whose backlog is full is left alone${what}, and serve and check refuse it`, async () => {
      const folder = folderFor();
      const socket = join(folder, what ? "e.sock" : "external.sock");
      const first = await startServer({
        args: ["serve", "--config", configFor(folder, socket)],
        secrets: [key],
      });
      const inode = lstatSync(socket).ino;

      first.process.kill("SIGSTOP");
      try {
        await using _queue = await fillBacklog(socket);
        const output = await refusedByServeAndCheck(folder, socket);
        expect(output).toContain(`${socket} is a socket that a running program still holds`);
      } finally {
        first.process.kill("SIGCONT");
      }

      // Its socket is the same file, and it answers once it has worked off the queue.
      expect(lstatSync(socket).ino).toBe(inode);
      expect(await statusOnceQueueIsServed(socket)).toBe(200);
      expect(first.output()).not.toContain("socket lost");
      expect(await first.stop()).toBe(0);
    });
  }

  test("a live server is left alone and the start is refused", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const other = Bun.serve({ unix: socket, fetch: () => new Response("other server") });

    const output = await refusedStart(folder, socket);

    expect(output).toContain(`another server is listening on ${socket}`);
    expect(await (await fetchUnix(socket, "/")).text()).toBe("other server");
    other.stop(true);
  });

  test.skipIf(asNobodySkipReason !== undefined)(
    "a socket this user may not connect to is left alone and the start is refused",
    async () => {
      const folder = sharedTempDir();
      const socket = join(folder, "external.sock");
      const other = Bun.serve({ unix: socket, fetch: () => new Response("root's server") });
      chmodSync(socket, 0o600);
      // As nobody, who cannot connect to root's 0600 socket to tell whether it is in use.
      const result = await startAsNobody(folder, socket);
      const checked = await checkAsNobody(folder);

      const refusal = `${socket} exists and this user cannot connect to it to tell whether it is in use`;
      expect(result.code).toBe(4);
      expect(result.output).toContain(refusal);
      expect(checked.code).toBe(4);
      expect(checked.output).toContain(refusal);
      expect(await (await fetchUnix(socket, "/")).text()).toBe("root's server");
      other.stop(true);
    },
  );

  const heldSockets = [
    ["datagram", "a datagram socket still in use"],
    ["full backlog", "a listening server whose backlog is full"],
  ] as const;

  for (const [kind, what] of heldSockets) {
    test(`${what} is left alone, and serve and check refuse it`, async () => {
      const folder = tempDir();
      const socket = join(folder, "external.sock");
      await using holder = await holdSocket(socket, kind);

      const output = await refusedByServeAndCheck(folder, socket);

      expect(output).toContain(`${socket} is a socket that a running program still holds`);
      expect(lstatSync(socket).isSocket()).toBe(true);
      expect(holder.process.exitCode).toBeNull();
    });
  }

  test.skipIf(asNobodySkipReason !== undefined)(
    "a stale socket this user may not remove is refused with what to do",
    async () => {
      const folder = sharedTempDir();
      const socket = join(folder, "external.sock");
      // In root's folder, where nobody cannot unlink it, though the mode lets anyone connect.
      bindAndLeave(socket);
      chmodSync(socket, 0o666);
      const inode = lstatSync(socket).ino;

      const result = await startAsNobody(folder, socket);

      expect(result.code).toBe(4);
      expect(result.output).toContain(`cannot remove the stale socket ${socket} (EACCES)`);
      expect(lstatSync(socket).ino).toBe(inode);

      // check, as the same user, refuses it in the same words.
      const checked = await checkAsNobody(folder);
      expect(checked.code).toBe(4);
      expect(checked.output).toContain(`cannot remove the stale socket ${socket} (EACCES)`);
    },
  );

  test("a socket held through a symbolic link to its folder is left alone", async () => {
    const folder = tempDir();
    mkdirSync(join(folder, "real"));
    symlinkSync("real", join(folder, "link"));
    // The other program binds by the real folder; extprov is configured through the link.
    const held = join(folder, "real", "external.sock");
    await expectLeftAlone(folder, held, join(folder, "link", "external.sock"));
  });

  test("a socket held by a name with two spaces in a row is left alone", async () => {
    const folder = tempDir();
    const socket = join(folder, "a  b.sock");
    await expectLeftAlone(folder, socket, socket);
  });

  test.skipIf(mountSkipReason !== undefined)(
    `a socket held through another mount of its folder is left alone${mountSkipReason ? ` (skipped: ${mountSkipReason})` : ""}`,
    async () => {
      const folder = tempDir();
      mkdirSync(join(folder, "real"));
      mkdirSync(join(folder, "mounted"));
      const mounted = join(folder, "mounted");
      expect(Bun.spawnSync(["mount", "--bind", join(folder, "real"), mounted]).exitCode).toBe(0);
      bindMounts.push(mounted);
      const held = join(mounted, "external.sock");
      await expectLeftAlone(folder, held, join(folder, "real", "external.sock"));
    },
  );

  test("a regular file is never deleted, and check refuses it too", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    writeFileSync(socket, "user data");

    expect(await refusedByServeAndCheck(folder, socket)).toContain("exists and is not a socket");
    expect(readFileSync(socket, "utf8")).toBe("user data");
  });

  test("a directory, as docker creates for a missing bind-mount source, is never deleted, and check refuses it too", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    mkdirSync(socket);

    expect(await refusedByServeAndCheck(folder, socket)).toContain(
      "is a directory; a container runtime creates one",
    );
    expect(lstatSync(socket).isDirectory()).toBe(true);
  });

  test("a symbolic link is neither followed nor deleted, and check refuses it too", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const target = join(folder, "target");
    writeFileSync(target, "target data");
    symlinkSync(target, socket);

    expect(await refusedByServeAndCheck(folder, socket)).toContain("is a symbolic link");
    expect(readlinkSync(socket)).toBe(target);
    expect(readFileSync(target, "utf8")).toBe("target data");
  });
});

describe("the socket's folder", () => {
  test("is created with mode 0755 when missing", async () => {
    const folder = tempDir();
    const socket = join(folder, "run", "external", "external.sock");
    const server = await startServer({
      args: ["serve", "--config", configFor(folder, socket)],
      secrets: [key],
    });

    expect(lstatSync(join(folder, "run", "external")).mode & 0o7777).toBe(0o755);
    expect(await server.stop()).toBe(0);
  });

  test.skipIf(asNobodySkipReason !== undefined)(
    "is refused by serve and check when this user could not create it",
    async () => {
      const folder = sharedTempDir();
      const socket = join(folder, "missing", "external.sock");

      const served = await startAsNobody(folder, socket);
      const checked = await checkAsNobody(folder);

      const refusal = `cannot create the socket folder ${join(folder, "missing")} (EACCES)`;
      expect(served.code).toBe(4);
      expect(served.output).toContain(refusal);
      expect(checked.code).toBe(4);
      expect(checked.output).toContain(refusal);
      expect(existsSync(join(folder, "missing"))).toBe(false);
    },
  );

  test("is refused by serve and check when it is a symbolic link to nothing", async () => {
    const folder = tempDir();
    symlinkSync("nowhere", join(folder, "dangling"));

    const output = await refusedByServeAndCheck(folder, join(folder, "dangling", "external.sock"));

    expect(output).toContain(
      `${join(folder, "dangling")} is a symbolic link to a folder that does not exist`,
    );
  });

  test("is refused by serve and check when a part of its path is a file", async () => {
    const folder = tempDir();
    writeFileSync(join(folder, "file"), "user data");

    const socket = join(folder, "file", "sub", "external.sock");
    const output = await refusedByServeAndCheck(folder, socket);

    expect(output).toContain("(ENOTDIR); a part of the path is a file, not a folder");
    expect(readFileSync(join(folder, "file"), "utf8")).toBe("user data");
  });

  test("is refused by serve and check when every user may write to it", async () => {
    const folder = tempDir();
    const open = join(folder, "open");
    mkdirSync(open);
    chmodSync(open, 0o1777);

    expect(await refusedByServeAndCheck(folder, join(open, "external.sock"))).toContain(
      "is writable by every user, who could replace the socket",
    );
  });

  // Whoever may rename the folder, or one above it, may put another server in its place.
  const unsafeWays: [string, (folder: string, inner: string) => void, string][] = [
    [
      "a folder above it every user may write to, without the sticky bit",
      (_, inner) => chmodSync(dirname(inner), 0o777),
      "/above, a folder on its path, has mode 0777: other users may turn the socket path to other files",
    ],
  ];
  if (process.geteuid?.() === 0) {
    unsafeWays.push([
      "a group of other users may write to it",
      (_, inner) => {
        chmodSync(inner, 0o775);
        giveToSharedGroup(inner);
      },
      "/above/run is writable by a group other users belong to, who could put another server's socket there; chmod g-w the folder",
    ]);
    unsafeWays.push([
      "another user owns it",
      (_, inner) => chownSync(inner, 65534, 65534),
      "/run, a folder on its path, is owned by uid 65534, who could put another server's socket in this one's place; chown it to root or to the user extprov runs as, or put the socket in a folder only root or the service user can change",
    ]);
  }

  // A umask of 002 makes folders writable by the user's private group, which holds no one else.
  test.skipIf(process.geteuid?.() !== 0)(
    "is accepted when only a group its trusted users alone belong to (root's) may write to it",
    async () => {
      const folder = tempDir();
      const inner = join(folder, "run");
      mkdirSync(inner);
      chmodSync(inner, 0o775);
      chmodSync(folder, 0o775);

      const checked = await runExtprov({
        args: ["check", "--config", configFor(folder, join(inner, "external.sock"))],
        secrets: [key],
      });

      expect(checked.code).toBe(0);
    },
  );

  // Above the socket folder only root may change anything: the service user's own folder
  // there could turn the socket path, and what extprov makes and removes, elsewhere.
  test.skipIf(process.geteuid?.() !== 0)(
    "is refused by serve and check, before anything is made, below a folder the service user owns",
    async () => {
      const folder = tempDir();
      const theirs = join(folder, "theirs");
      mkdirSync(theirs);
      chownSync(theirs, 65534, 65534);
      const socket = join(theirs, "run", "external.sock");
      const keyFile = join(folder, "device.key");
      writeFileSync(keyFile, key, { mode: 0o600 });
      chownSync(keyFile, 65534, 65534);
      chmodSync(folder, 0o755);
      const document = symmetricKeyConfig(socket, key, { runAs: { user: "nobody" } });
      document.credentials = { symmetricKey: { file: keyFile } };
      const config = writeConfig(folder, document, "config.yaml", 0o644);

      for (const command of ["serve", "check"]) {
        const result = await runExtprov({ args: [command, "--config", config], secrets: [key] });
        expect(result.code).toBe(4);
        expect(result.output).toContain(
          `above the socket folder, ${theirs}, a folder on its path, is owned by uid 65534, who could turn the socket path to other files; chown it to root`,
        );
      }
      expect(existsSync(join(theirs, "run"))).toBe(false);
    },
  );

  test.skipIf(process.geteuid?.() !== 0)(
    "is refused by serve and check when it is a link into a folder the service user owns",
    async () => {
      const folder = tempDir();
      const theirs = join(folder, "theirs");
      mkdirSync(join(theirs, "sock"), { recursive: true });
      chownSync(theirs, 65534, 65534);
      symlinkSync(join(theirs, "sock"), join(folder, "run"));

      const output = await refusedByServeAndCheck(folder, join(folder, "run", "external.sock"));

      expect(output).toContain(
        `above the socket folder, ${theirs}, a folder on its path, is owned by uid 65534`,
      );
      expect(readdirSync(join(theirs, "sock"))).toEqual([]);
    },
  );

  test.skipIf(process.geteuid?.() !== 0)(
    "is refused by serve and check when it is a link through a folder the service user owns",
    async () => {
      const folder = tempDir();
      const theirs = join(folder, "svc");
      const data = join(folder, "data", "external");
      mkdirSync(theirs);
      mkdirSync(data, { recursive: true });
      chownSync(theirs, 65534, 65534);
      chownSync(data, 65534, 65534);
      symlinkSync(data, join(theirs, "current"));
      lchownSync(join(theirs, "current"), 65534, 65534);
      symlinkSync(join(theirs, "current"), join(folder, "run"));

      const output = await refusedByServeAndCheck(folder, join(folder, "run", "external.sock"));

      expect(output).toContain(
        `above the socket folder, ${theirs}, a folder on its path, is owned by uid 65534`,
      );
      expect(readdirSync(data)).toEqual([]);
    },
  );

  // Its owner may rename it away in a sticky folder and put a link in its place.
  test.skipIf(process.geteuid?.() !== 0)(
    "is refused by serve and check when the service user owns it in a sticky folder",
    async () => {
      const folder = tempDir();
      const sticky = join(folder, "tmp");
      mkdirSync(join(sticky, "ext"), { recursive: true });
      chmodSync(sticky, 0o1777);
      chownSync(join(sticky, "ext"), 65534, 65534);

      expect(await refusedByServeAndCheck(folder, join(sticky, "ext", "s.sock"))).toContain(
        `the socket folder ${join(sticky, "ext")} is owned by uid 65534 in ${sticky}, which other users may write: it could be swapped for a link`,
      );
    },
  );

  test.skipIf(process.geteuid?.() !== 0)(
    "is refused by serve and check when root's link leads to the service user's folder in a sticky one",
    async () => {
      const folder = tempDir();
      const sticky = join(folder, "tmp");
      const theirs = join(sticky, "svc");
      mkdirSync(theirs, { recursive: true });
      chmodSync(sticky, 0o1777);
      chownSync(theirs, 65534, 65534);
      symlinkSync(theirs, join(sticky, "link"));

      expect(await refusedByServeAndCheck(folder, join(sticky, "link", "s.sock"))).toContain(
        `the socket folder ${theirs} is owned by uid 65534 in ${sticky}, which other users may write`,
      );
      expect(readdirSync(theirs)).toEqual([]);
    },
  );

  // Below a sticky folder others could put a link where a level is to be made.
  test("missing folders below a sticky folder are not made, by serve or check", async () => {
    const folder = tempDir();
    const sticky = join(folder, "tmp");
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    const socket = join(sticky, "x", "external", "external.sock");

    expect(await refusedByServeAndCheck(folder, socket)).toContain(
      `extprov does not create ${join(sticky, "x", "external")} below ${sticky}, which other users may write`,
    );
    expect(readdirSync(sticky)).toEqual([]);
  });

  for (const [what, loosen, problem] of unsafeWays) {
    test(`is refused by serve and check when ${what}`, async () => {
      const folder = tempDir();
      const inner = join(folder, "above", "run");
      mkdirSync(inner, { recursive: true });
      loosen(folder, inner);

      const output = await refusedByServeAndCheck(folder, join(inner, "external.sock"));

      expect(output).toMatch(
        new RegExp(`refused to start: (the socket folder|above the socket folder,) ${folder}`),
      );
      expect(output).toContain(problem);
      expect(existsSync(join(inner, "external.sock"))).toBe(false);
    });
  }
});

describe("private folders a killed start left", () => {
  test("are removed when a minute old and holding sockets alone; others are left", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const old = new Date(Date.now() - 120_000);
    const leftover = join(folder, ".extprov-Ab12Cd");
    const recent = join(folder, ".extprov-Ef34Gh");
    const withAFile = join(folder, ".extprov-Ij56Kl");
    for (const made of [leftover, recent, withAFile]) mkdirSync(made, { mode: 0o700 });
    bindAndLeave(join(leftover, ".extprov-1a-2b"));
    writeFileSync(join(withAFile, "notes"), "the user's\n");
    utimesSync(leftover, old, old);
    utimesSync(withAFile, old, old);

    const server = await startServer({
      args: ["serve", "--config", configFor(folder, socket)],
      secrets: [key],
    });

    expect(existsSync(leftover)).toBe(false);
    expect(server.output()).toContain(
      `removed a private folder a killed start left path=${leftover}`,
    );
    expect(existsSync(recent)).toBe(true);
    expect(readFileSync(join(withAFile, "notes"), "utf8")).toBe("the user's\n");
    expect(await server.stop()).toBe(0);
  });
});

describe("the socket's owner and group", () => {
  // Without root, chown(2) gives a file only to a group its owner is in.
  test.skipIf(asNobodySkipReason !== undefined)(
    "that this user cannot give without root are refused by serve and check, before binding",
    async () => {
      const folder = sharedTempDir();
      const socket = join(folder, "run", "external.sock");
      mkdirSync(join(folder, "run"));
      chownSync(join(folder, "run"), 65534, 65534);

      const served = await startAsNobody(folder, socket, { group: 1, mode: "0660" });
      const checked = await checkAsNobody(folder);

      const refusal = "cannot give the socket to uid 65534 gid 1 as uid 65534; only root can give";
      expect(served.code).toBe(4);
      expect(served.output).toContain(refusal);
      expect(served.output).not.toContain("socket ready");
      expect(checked.code).toBe(4);
      expect(checked.output).toContain(refusal);
    },
  );
});

describe("the socket path's length", () => {
  test("108 bytes, one more than a Unix socket address holds, is refused by check and serve", async () => {
    const folder = folderForPathOf(108, "external.sock");
    const socket = join(folder, "external.sock");
    const config = configFor(folder, socket);
    const expected =
      "/listen/endpoint: the socket path is 108 bytes, more than the 107 a Unix socket address holds (108 with its terminating NUL), so iotedged could not connect by it; choose a shorter path";

    const checked = await runExtprov({ args: ["check", "--config", config], secrets: [key] });
    const served = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(checked.code).toBe(3);
    expect(checked.output).toContain(expected);
    expect(served.code).toBe(3);
    expect(served.output).toContain(`refused to start: ${config}: ${expected}`);
    expect(existsSync(socket)).toBe(false);
  });

  test("107 bytes with a name shorter than the private one bound first is served, and curl connects by it", async () => {
    const folder = folderForPathOf(107, "e.sock");
    const socket = join(folder, "e.sock");
    const server = await startServer({
      args: ["serve", "--config", configFor(folder, socket)],
      secrets: [key],
    });

    const answer = curlUnix(socket, provisioningPath);

    expect(answer.exitCode).toBe(0);
    expect(answer.status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });
});

describe("stopping", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`on ${signal} removes the socket and exits 0`, async () => {
      const folder = tempDir();
      const socket = join(folder, "external.sock");
      const server = await startServer({
        args: ["serve", "--config", configFor(folder, socket)],
        secrets: [key],
      });

      expect(await server.stop(signal)).toBe(0);
      expect(existsSync(socket)).toBe(false);
      expect(server.output()).toContain(`stopping signal=${signal}`);
    });
  }
});
