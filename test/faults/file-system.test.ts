/**
 * The socket's file system refuses: read-only, out of inodes, out of blocks, or a folder
 * the service user cannot write. Each start is refused with exit 4 and the cause, creates
 * nothing, deletes nothing, and works once the cause is gone.
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { mountSkipReason, mountTmpfs, unmount } from "../helpers/mount.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { countFaults } from "../helpers/suite-record.ts";
import { sharedTempDir, tempDir } from "../helpers/temp.ts";
import { asNobody, asNobodySkipReason } from "../helpers/users.ts";

const key = newSymmetricKey();
if (mountSkipReason) console.warn(`file system fault tests skipped: ${mountSkipReason}`);

const mounted: string[] = [];
afterEach(() => {
  for (const folder of mounted.splice(0)) unmount(folder);
});

/** A tmpfs with `options` in a fresh folder, unmounted after the test. */
function tmpfs(options: string): string {
  const folder = join(tempDir(), "mnt");
  mkdirSync(folder);
  mountTmpfs(folder, `mode=0755,${options}`);
  mounted.push(folder);
  countFaults();
  return folder;
}

function configFor(socket: string): string {
  return writeConfig(tempDir(), symmetricKeyConfig(socket, key));
}

/** Creates empty files until the file system has no inode left; returns their names. */
function useAllInodes(folder: string): string[] {
  const names: string[] = [];
  for (let index = 0; index < 64; index++) {
    try {
      writeFileSync(join(folder, `filler-${index}`), "user data");
      names.push(`filler-${index}`);
    } catch {
      return names;
    }
  }
  throw new Error("the file system did not fill up");
}

describe.skipIf(mountSkipReason !== undefined)("a file system that refuses the socket", () => {
  test("read-only: the start is refused with exit 4, the cause and the fix", async () => {
    const socket = join(tmpfs("ro,size=64k"), "external.sock");

    const result = await runExtprov({
      args: ["serve", "--config", configFor(socket)],
      secrets: [key],
    });

    expect(result.code).toBe(4);
    expect(result.output).toContain(`cannot listen on ${socket} (EROFS)`);
    expect(result.output).toContain(
      "the file system is read-only; put the socket on a writable tmpfs such as /run",
    );
    expect(result.output).not.toContain("    at ");
  });

  test("read-only, with the socket's folder missing: exit 4 naming the folder, not exit 1", async () => {
    const folder = join(tmpfs("ro,size=64k"), "external");

    const result = await runExtprov({
      args: ["serve", "--config", configFor(join(folder, "external.sock"))],
      secrets: [key],
    });

    expect(result.code).toBe(4);
    expect(result.output).toContain(
      `cannot create the socket folder ${folder} (EROFS); the file system is read-only`,
    );
  });

  test("out of inodes: exit 4 with the cause; once three are freed the same start serves", async () => {
    const folder = tmpfs("size=64k,nr_inodes=8");
    const fillers = useAllInodes(folder);
    const socket = join(folder, "external.sock");
    const config = configFor(socket);

    const refused = await runExtprov({ args: ["serve", "--config", config], secrets: [key] });

    expect(refused.code).toBe(4);
    expect(refused.output).toContain("ENOSPC");
    expect(refused.output).toContain("the file system is full (no free blocks or inodes)");
    expect(readdirSync(folder).sort()).toEqual([...fillers].sort());

    // tmpfs counts names: the private folder, the socket in it and its link each take one
    // for a moment.
    for (const name of fillers.splice(-3)) rmSync(join(folder, name));
    const server = await startServer({ args: ["serve", "--config", config], secrets: [key] });

    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(readdirSync(folder).sort()).toEqual([...fillers].sort());
    expect(fillers.every((name) => readFileSync(join(folder, name), "utf8") === "user data")).toBe(
      true,
    );
  });

  test("out of blocks but not inodes: the socket needs no data, so extprov serves", async () => {
    const folder = tmpfs("size=4k");
    expect(() => writeFileSync(join(folder, "filler"), Buffer.alloc(64 * 1024))).toThrow(/ENOSPC/);
    const socket = join(folder, "external.sock");

    const server = await startServer({
      args: ["serve", "--config", configFor(socket)],
      secrets: [key],
    });

    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(existsSync(join(folder, "filler"))).toBe(true);
  });
});

describe.skipIf(asNobodySkipReason !== undefined)(
  "a socket folder the service user cannot write",
  () => {
    test("mode 0555, as that user: exit 4 with EACCES and the fix", async () => {
      const folder = sharedTempDir();
      const socketFolder = join(folder, "run");
      mkdirSync(socketFolder);
      chownSync(socketFolder, 65534, 65534);
      chmodSync(socketFolder, 0o555);
      const config = writeConfig(
        folder,
        symmetricKeyConfig(join(socketFolder, "external.sock"), key),
      );
      chownSync(config, 65534, 65534);
      countFaults();

      const wrapper = asNobody;
      const result = await runExtprov({
        args: ["serve", "--config", config],
        secrets: [key],
        wrapper,
      });

      expect(result.code).toBe(4);
      expect(result.output).toContain(
        `cannot listen on ${join(socketFolder, "external.sock")} (EACCES)`,
      );
      expect(result.output).toContain("check that the folder is writable by this user");
      expect(readdirSync(socketFolder)).toEqual([]);
    });
  },
);
