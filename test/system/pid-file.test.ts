/**
 * `serve --pid-file` writes as root to a path from the command line: a mistyped path must
 * never cost the file it names. Only a missing file or a stale pid file is replaced, a
 * symbolic link is never followed, and the file is removed at stop only while it is ours.
 */
import { describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";

/** A folder with a key file, a configuration serving it, and a pid file path in it. */
function keyFileServer() {
  const folder = tempDir();
  const key = newSymmetricKey();
  const socket = join(folder, "external.sock");
  const keyFile = writeSecret(folder, "device.key", key);
  const config = writeConfig(folder, {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "pid-file-device" },
    credentials: { symmetricKey: { file: "device.key" } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
  });
  return { folder, key, socket, keyFile, config, pidFile: join(folder, "extprov.pid") };
}

function serveArgs(config: string, pidFile: string): string[] {
  return ["serve", "--config", config, "--pid-file", pidFile];
}

/** The pid of a process that has exited: a stale pid file names one. */
async function exitedPid(): Promise<number> {
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  return gone.pid;
}

/** Puts `content` at `path` by rename, as another program would replace the pid file. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.other`, content);
  renameSync(`${path}.other`, path);
}

function leftovers(folder: string): string[] {
  return readdirSync(folder).filter((name) => name.startsWith("."));
}

describe("serve --pid-file refuses a path that holds something else", () => {
  test("the configuration file given as the pid file survives byte for byte", async () => {
    const { folder, key, socket, config } = keyFileServer();
    const before = readFileSync(config);

    const result = await runExtprov({ args: serveArgs(config, config), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `${config} holds something other than a pid: it does not look like a pid file and will not be overwritten; choose another --pid-file`,
    );
    expect(result.output).toContain("or remove the file if it is not needed");
    expect(readFileSync(config)).toEqual(before);
    expect(existsSync(socket)).toBe(false);
    expect(leftovers(folder)).toEqual([]);
  });

  test("a key file given as the pid file survives byte for byte, and its key is not printed", async () => {
    const { key, keyFile, config } = keyFileServer();
    const before = readFileSync(keyFile);

    const result = await runExtprov({ args: serveArgs(config, keyFile), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `${keyFile} holds something other than a pid: it does not look like a pid file and will not be overwritten`,
    );
    expect(readFileSync(keyFile)).toEqual(before);
    expect(lstatSync(keyFile).mode & 0o777).toBe(0o600);
  });

  test("an empty file is refused as empty, not as holding more than a pid, and stays", async () => {
    const { key, config, pidFile } = keyFileServer();
    writeFileSync(pidFile, "");

    const result = await runExtprov({ args: serveArgs(config, pidFile), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `${pidFile} is empty: it does not look like a pid file and will not be overwritten`,
    );
    expect(result.output).not.toContain("holds something other than a pid");
    expect(readFileSync(pidFile, "utf8")).toBe("");
  });

  test("a symbolic link stays a link, and the file it points to is untouched", async () => {
    const { key, keyFile, config, pidFile } = keyFileServer();
    symlinkSync(keyFile, pidFile);
    const before = readFileSync(keyFile);

    const result = await runExtprov({ args: serveArgs(config, pidFile), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `the pid file ${pidFile} is a symbolic link, and extprov never writes through one; remove the link`,
    );
    expect(lstatSync(pidFile).isSymbolicLink()).toBe(true);
    expect(readlinkSync(pidFile)).toBe(keyFile);
    expect(readFileSync(keyFile)).toEqual(before);
  });

  test("a link to a stale pid file is refused too: a link is never followed", async () => {
    const { folder, key, config, pidFile } = keyFileServer();
    const target = join(folder, "elsewhere.pid");
    writeFileSync(target, `${await exitedPid()}\n`);
    symlinkSync(target, pidFile);
    const before = readFileSync(target);

    const result = await runExtprov({ args: serveArgs(config, pidFile), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(`the pid file ${pidFile} is a symbolic link`);
    expect(readlinkSync(pidFile)).toBe(target);
    expect(readFileSync(target)).toEqual(before);
  });

  test("a folder given as the pid file is refused as not a pid file", async () => {
    const { folder, key, config } = keyFileServer();

    const result = await runExtprov({ args: serveArgs(config, folder), secrets: [key] });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `${folder} is not a regular file: it does not look like a pid file and will not be overwritten`,
    );
  });
});

describe("serve --pid-file refuses a folder others could change", () => {
  // Root writes the pid file by name: a link put on the way would land it elsewhere.
  test("one every user may write: refused before anything is written there", async () => {
    const { folder, key, config } = keyFileServer();
    const open = join(folder, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);

    const result = await runExtprov({
      args: serveArgs(config, join(open, "extprov.pid")),
      secrets: [key],
    });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `the pid file ${join(open, "extprov.pid")}: ${open}, a folder on its path, has mode 0777: other users may turn the pid file's path to other files`,
    );
    expect(readdirSync(open)).toEqual([]);
  });
});

describe("serve --pid-file replaces a stale pid file", () => {
  test.each([
    ["a pid with a newline", (pid: number) => `${pid}\n`],
    ["a pid without one", (pid: number) => `${pid}`],
  ])("holding %s of a process that has exited", async (_, content) => {
    const { folder, key, config, pidFile } = keyFileServer();
    const stale = await exitedPid();
    writeFileSync(pidFile, content(stale));

    const server = await startServer({ args: serveArgs(config, pidFile), secrets: [key] });

    expect(readFileSync(pidFile, "utf8")).toBe(`${server.process.pid}\n`);
    expect(server.output()).toContain(
      `replaced a stale pid file file=${pidFile}: it held pid ${stale}, which is not a running extprov`,
    );
    expect(leftovers(folder)).toEqual([]);
    expect(await server.stop()).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  test("naming a running process that is not extprov", async () => {
    const { key, config, pidFile } = keyFileServer();
    writeFileSync(pidFile, `${process.pid}\n`);

    const server = await startServer({ args: serveArgs(config, pidFile), secrets: [key] });

    expect(readFileSync(pidFile, "utf8")).toBe(`${server.process.pid}\n`);
    expect(await server.stop()).toBe(0);
  });
});

describe("stopping removes the pid file only while it is ours", () => {
  test("a pid file another program rewrote is left on SIGTERM", async () => {
    const { key, config, pidFile } = keyFileServer();
    const server = await startServer({ args: serveArgs(config, pidFile), secrets: [key] });

    replaceFile(pidFile, "12345\n");

    expect(await server.stop()).toBe(0);
    expect(readFileSync(pidFile, "utf8")).toBe("12345\n");
  });

  test("a link put in its place is left on SIGTERM, even to a file naming this process", async () => {
    const { folder, key, config, pidFile } = keyFileServer();
    const target = join(folder, "target.pid");
    const server = await startServer({ args: serveArgs(config, pidFile), secrets: [key] });

    writeFileSync(target, `${server.process.pid}\n`);
    symlinkSync(target, `${pidFile}.link`);
    renameSync(`${pidFile}.link`, pidFile);

    expect(await server.stop()).toBe(0);
    expect(lstatSync(pidFile).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, "utf8")).toBe(`${server.process.pid}\n`);
  });
});
