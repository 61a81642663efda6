/**
 * Binds the Unix socket so that it is never more open than configured: it is created with
 * mode 0000 (only root can connect) under a private name, then given its owner and group,
 * then its mode, read back, and only then linked to its configured path.
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
  type Stats,
} from "node:fs";
import { basename, join } from "node:path";
import type { Server } from "bun";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import { fileSystemHint, inFolder, type SocketFolder } from "./path.ts";
import { privateNameFor } from "./private-name.ts";

export interface SocketOwnership {
  uid: number;
  gid: number;
  mode: number;
}

/** What the socket file is, so that shutdown removes only the one this process made. */
export interface BoundSocket {
  server: Server<undefined>;
  path: string;
  inode: number;
  device: number;
}

/**
 * Calls `listen` with a umask that creates the socket closed, sets and checks ownership,
 * then links the socket to `path`, where it appears complete.
 *
 * The socket is bound in a private folder made beside `path`, only this user may enter,
 * and reached through a descriptor of that folder (/proc/self/fd/N): the socket folder
 * may belong to the service user, who could otherwise swap the socket for a link between
 * bind and chown and have root give any file away. Bun unlinks the path it listened on
 * when the server stops, whatever is there by then: that path is in the private folder,
 * which is gone by then, so nothing of the user's is touched.
 */
export function bindUnixSocket(
  path: string,
  socketFolder: SocketFolder,
  ownership: SocketOwnership,
  listen: (path: string) => Server<undefined>,
): BoundSocket {
  removeLeftoverPrivateFolders(socketFolder);
  const folder = openPrivateFolder(path, socketFolder);
  // Short whatever the configured path: a socket address holds at most 107 bytes.
  const privatePath = `/proc/self/fd/${folder.fd}/${privateNameFor(basename(path))}`;

  const previousUmask = process.umask(0o777);
  let server: Server<undefined>;
  try {
    server = listen(privatePath);
  } catch (error) {
    folder.remove();
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(
      `cannot listen on ${path} (${code ?? (error as Error).message})`,
      fileSystemHint(code),
    );
  } finally {
    process.umask(previousUmask);
  }

  try {
    applyOwnership(privatePath, ownership);
    verifyOwnership(privatePath, ownership);
    const { ino, dev, uid, gid } = publish(
      privatePath,
      path,
      inFolder(socketFolder, basename(path)),
    );
    log.info("socket ready", { socket: path, uid, gid, mode: octal(ownership.mode) });
    return { server, path, inode: ino, device: dev };
  } catch (error) {
    server.stop(true);
    throw error;
  } finally {
    removeIfOurs(privatePath);
    folder.remove();
  }
}

/**
 * A new folder beside `path` that only this user may enter, held open: its descriptor stays
 * for the life of the process, so /proc/self/fd/N always names this folder (or nothing,
 * once it is removed), never another one that got the same number.
 */
function openPrivateFolder(
  path: string,
  socketFolder: SocketFolder,
): { fd: number; remove(): void } {
  const parent = socketFolder.path;
  let folder: string;
  let fd: number;
  try {
    folder = mkdtempSync(inFolder(socketFolder, ".extprov-"));
    fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(`cannot listen on ${path} (${code})`, fileSystemHint(code));
  }

  // Another user who may write in `parent` could have put their folder in its place.
  const opened = fstatSync(fd);
  if (opened.uid !== process.geteuid!() || (opened.mode & 0o7777) !== 0o700) {
    throw new ListenError(
      `the private folder extprov made in ${parent} was replaced while it bound the socket`,
      "another user may write in the socket folder; give it to root or the service user alone",
    );
  }

  return {
    fd,
    remove() {
      const current = lstatOrUndefined(folder);
      if (current?.ino === opened.ino && current.dev === opened.dev) rmdirQuietly(folder);
    },
  };
}

/** A start takes milliseconds: a private folder this old was left by one that was killed. */
const leftoverAgeMs = 60_000;

/**
 * Removes the private folders that killed starts left in `parent` (a SIGKILL between
 * making one and removing it): this user's, mode 0700, a minute old, holding sockets
 * alone. Anything else is left as it is.
 */
function removeLeftoverPrivateFolders(socketFolder: SocketFolder): void {
  let names: string[];
  try {
    names = readdirSync(inFolder(socketFolder, "")).filter((name) =>
      /^\.extprov-[A-Za-z0-9]{6}$/.test(name),
    );
  } catch {
    return;
  }

  for (const name of names) {
    removeIfLeftover(inFolder(socketFolder, name), join(socketFolder.path, name));
  }
}

/** Looked at through a descriptor opened without following links, as it may be swapped. */
function removeIfLeftover(folder: string, shown: string): void {
  let fd: number;
  try {
    fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return;
  }

  try {
    const stats = fstatSync(fd);
    if (stats.uid !== process.geteuid!() || (stats.mode & 0o7777) !== 0o700) return;
    if (Date.now() - stats.mtimeMs < leftoverAgeMs) return;

    const inside = readdirSync(`/proc/self/fd/${fd}`).map(
      (entry) => `/proc/self/fd/${fd}/${entry}`,
    );
    if (!inside.every((entry) => lstatOrUndefined(entry)?.isSocket())) return;

    for (const entry of inside) unlinkSync(entry);
    const current = lstatOrUndefined(folder);
    if (current?.ino === stats.ino && current.dev === stats.dev) rmdirQuietly(folder);
    log.info("removed a private folder a killed start left", { path: shown });
  } catch {
    // Changed while looked at: left for the next start.
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function rmdirQuietly(folder: string): void {
  try {
    rmdirSync(folder);
  } catch {
    // Not empty or gone: left for the user to see, never forced.
  }
}

/** Links the finished socket to `path`; a link never replaces a file that is already there. */
/** `here` is `path` as reached through the held socket folder; messages name `path`. */
function publish(privatePath: string, path: string, here: string): Stats {
  try {
    linkSync(privatePath, here);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "EEXIST"
        ? "another file appeared there while extprov started; extprov leaves it alone"
        : fileSystemHint(code);
    throw new ListenError(`cannot put the socket at ${path} (${code})`, hint);
  }

  unlinkSync(privatePath);
  return lstatSync(here);
}

/** Removes the socket at `path` if it is still the one this process bound. */
export function removeSocket(socket: BoundSocket): void {
  try {
    const stats = lstatSync(socket.path);
    if (!stats.isSocket() || stats.ino !== socket.inode || stats.dev !== socket.device) return;
    unlinkSync(socket.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;

    // After dropping root, the socket's folder may not be writable by the service user.
    log.warn("socket left in place", {
      socket: socket.path,
      reason: `cannot remove it (${code}); the next start replaces it`,
      hint: "make the socket folder writable by the service user",
    });
  }
}

function applyOwnership(path: string, { uid, gid, mode }: SocketOwnership): void {
  try {
    chownSync(path, uid, gid);
  } catch (error) {
    throw new ListenError(
      `cannot give the socket to uid ${uid} gid ${gid} (${(error as NodeJS.ErrnoException).code})`,
      "only root can give a file to another user or to a group it is not in; start extprov as root with runAs, or change listen.socket",
    );
  }

  chmodSync(path, mode);
}

function verifyOwnership(path: string, expected: SocketOwnership): void {
  const stats = lstatSync(path);
  const mode = stats.mode & 0o7777;

  if (
    !stats.isSocket() ||
    stats.uid !== expected.uid ||
    stats.gid !== expected.gid ||
    mode !== expected.mode
  ) {
    throw new ListenError(
      `the socket came out as uid ${stats.uid} gid ${stats.gid} mode ${octal(mode)}, not uid ${expected.uid} gid ${expected.gid} mode ${octal(expected.mode)}`,
      "the file system may not keep owners or modes (e.g. a FUSE or vfat mount); put the socket on tmpfs such as /run",
    );
  }
}

function removeIfOurs(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing left to remove.
  }
}

export function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}
