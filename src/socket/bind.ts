/**
 * Binds the Unix socket so that it is never more open than configured: it is created with
 * mode 0000 (only root can connect) under a private name, then given its owner and group,
 * then its mode, read back, and only then linked to its configured path.
 */
import { chmodSync, chownSync, linkSync, lstatSync, unlinkSync, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Server } from "bun";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import { fileSystemHint } from "./path.ts";
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
 * Bun unlinks the path it listened on when the server stops, whatever file is there by
 * then (a user's file that replaced the socket would go): so Bun listens on a private name
 * beside `path`, which is unlinked as soon as the socket is in place.
 */
export function bindUnixSocket(
  path: string,
  ownership: SocketOwnership,
  listen: (path: string) => Server<undefined>,
): BoundSocket {
  // Up to 23 bytes, so with a shorter socket name it may pass the 107 bytes a socket address
  // holds, which the configuration check allows the configured path only: Bun binds such a
  // path through /proc/self/fd, and clients connect by the configured path alone.
  const privatePath = join(dirname(path), privateNameFor(basename(path)));
  removeIfOurs(privatePath);

  const previousUmask = process.umask(0o777);
  let server: Server<undefined>;
  try {
    server = listen(privatePath);
  } catch (error) {
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
    const { ino, dev, uid, gid } = publish(privatePath, path);
    log.info("socket ready", { socket: path, uid, gid, mode: octal(ownership.mode) });
    return { server, path, inode: ino, device: dev };
  } catch (error) {
    server.stop(true);
    removeIfOurs(privatePath);
    throw error;
  }
}

/** Links the finished socket to `path`; a link never replaces a file that is already there. */
function publish(privatePath: string, path: string): Stats {
  try {
    linkSync(privatePath, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "EEXIST"
        ? "another file appeared there while extprov started; extprov leaves it alone"
        : fileSystemHint(code);
    throw new ListenError(`cannot put the socket at ${path} (${code})`, hint);
  }

  unlinkSync(privatePath);
  return lstatSync(path);
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
