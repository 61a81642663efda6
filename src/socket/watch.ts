/**
 * Notices when the socket file is removed or replaced while serving. The server still
 * listens on the unlinked socket, but no client can reach it by its path any more.
 */
import { lstatSync } from "node:fs";
import type { BoundSocket } from "./bind.ts";

/** Seconds between two looks at the socket file: one lstat, nothing more. */
export const socketCheckSeconds = 2;

/** Resolves with what happened once the path no longer holds the socket this process bound. */
export function watchSocket(socket: BoundSocket): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();

  const timer = setInterval(() => {
    const loss = describeLoss(socket);
    if (loss === undefined) return;

    clearInterval(timer);
    resolve(loss);
  }, socketCheckSeconds * 1000);
  timer.unref();

  return promise;
}

function describeLoss(socket: BoundSocket): string | undefined {
  let stats;
  try {
    stats = lstatSync(socket.path);
  } catch (error) {
    // Only a missing file is a loss; a look that fails for another reason proves nothing.
    return (error as NodeJS.ErrnoException).code === "ENOENT"
      ? "the socket file was removed"
      : undefined;
  }

  if (!stats.isSocket() || stats.ino !== socket.inode || stats.dev !== socket.device) {
    return "another file took the socket's place";
  }

  return undefined;
}
