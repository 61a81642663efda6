/**
 * Binds the Unix socket so that it is never more open than configured: it is created with
 * mode 0000 (only root can connect), then given its owner and group, then its mode, and
 * the result is read back before a single request is served.
 */
import { chmodSync, chownSync, lstatSync, unlinkSync } from "node:fs";
import type { Server } from "bun";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import { fileSystemHint } from "./path.ts";

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
}

/** Calls `listen` with a umask that creates the socket closed, then sets and checks ownership. */
export function bindUnixSocket(
  path: string,
  ownership: SocketOwnership,
  listen: (path: string) => Server<undefined>,
): BoundSocket {
  const previousUmask = process.umask(0o777);
  let server: Server<undefined>;
  try {
    server = listen(path);
  } catch (error) {
    throw new ListenError(`cannot listen on ${path}: ${(error as Error).message}`, fileSystemHint((error as NodeJS.ErrnoException).code));
  } finally {
    process.umask(previousUmask);
  }

  try {
    applyOwnership(path, ownership);
    const inode = verifyOwnership(path, ownership);
    return { server, path, inode };
  } catch (error) {
    server.stop(true);
    removeIfOurs(path);
    throw error;
  }
}

/** Removes the socket at `path` if it is still the one with `inode`. */
export function removeSocket(socket: BoundSocket): void {
  try {
    if (lstatSync(socket.path).ino !== socket.inode) return;
    unlinkSync(socket.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;

    // After dropping root, the socket's folder may not be writable by the service user.
    log.warn("socket left in place", { socket: socket.path, reason: `cannot remove it (${code}); the next start replaces it`, hint: "make the socket folder writable by the service user" });
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

function verifyOwnership(path: string, expected: SocketOwnership): number {
  const stats = lstatSync(path);
  const mode = stats.mode & 0o7777;

  if (!stats.isSocket() || stats.uid !== expected.uid || stats.gid !== expected.gid || mode !== expected.mode) {
    throw new ListenError(
      `the socket came out as uid ${stats.uid} gid ${stats.gid} mode ${octal(mode)}, not uid ${expected.uid} gid ${expected.gid} mode ${octal(expected.mode)}`,
      "the file system may not keep owners or modes (e.g. a FUSE or vfat mount); put the socket on tmpfs such as /run",
    );
  }

  log.info("socket ready", { socket: path, uid: stats.uid, gid: stats.gid, mode: octal(mode) });
  return stats.ino;
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
