/**
 * sd_notify for systemd's Type=notify: READY=1 once the socket is served, RELOADING=1 and
 * READY=1 around reloads, STOPPING=1 on shutdown. Without NOTIFY_SOCKET it does nothing.
 *
 * Bun has no AF_UNIX datagram socket, so libc's socket(2) and sendto(2) are called through
 * bun:ffi, from the main process itself: systemd accepts it with the default
 * NotifyAccess=main, and no helper process can race its own exit (as systemd-notify can).
 * bun:ffi needs the JIT: under MemoryDenyWriteExecute=yes it refuses, and extprov logs why.
 */
import { readFileSync } from "node:fs";
import { log } from "../log.ts";

/**
 * bun:ffi and node:os, loaded on the first notification: a start without NOTIFY_SOCKET
 * (SysV, OpenRC, a shell, `check`) has no use for them.
 */
function ffi(): typeof import("bun:ffi") {
  return require("bun:ffi");
}

function errnoNames(): Record<string, number> {
  return (require("node:os") as typeof import("node:os")).constants.errno;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const CLOCK_MONOTONIC = 1;
/** sizeof(struct sockaddr_un): a 2-byte family and 108 bytes of path. */
const sockaddrSize = 110;

/** The libc functions used, in bun:ffi's terms (its FFIType names, as strings). */
const libcSymbols = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
} as const;

type Libc = ReturnType<typeof import("bun:ffi").dlopen<typeof libcSymbols>>["symbols"];

export interface Notifier {
  /** Sends `fields` (e.g. { READY: "1" }); failures are logged once, never thrown. */
  send(fields: Record<string, string>): void;
  /** CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC. */
  monotonicMicroseconds(): bigint | undefined;
}

/** A notifier for `NOTIFY_SOCKET`, or one that does nothing when it is unset. */
export function systemdNotifier(socket = process.env.NOTIFY_SOCKET): Notifier {
  if (!socket) return { send: () => {}, monotonicMicroseconds: () => undefined };

  let libc: Libc | undefined;
  let failed = false;
  const address = socketAddress(socket);

  const fail = (reason: string, hint?: string) => {
    if (!failed) log.error("cannot notify systemd", { socket, reason, hint });
    failed = true;
  };

  const open = (): Libc | undefined => {
    if (libc || failed) return libc;
    try {
      libc = openLibc();
    } catch (error) {
      fail(
        (error as Error).message,
        "let the service use the JIT (MemoryDenyWriteExecute=no), or run it with Type=simple",
      );
    }
    return libc;
  };

  return {
    send(fields) {
      if (!address) return fail("NOTIFY_SOCKET is neither a path nor an abstract @name");
      const functions = open();
      if (!functions) return;

      const message = Buffer.from(
        Object.entries(fields)
          .map(([name, value]) => `${name}=${value.replace(/\n/g, " ")}`)
          .join("\n"),
      );
      const error = sendDatagram(functions, address, message);
      if (error) return fail(error);
      log.debug("notified systemd", { reason: Object.keys(fields).join(", ") });
    },
    monotonicMicroseconds() {
      const functions = open();
      if (!functions) return undefined;

      const timespec = new BigInt64Array(2);
      if (functions.clock_gettime(CLOCK_MONOTONIC, timespec) !== 0) return undefined;
      return timespec[0]! * 1_000_000n + timespec[1]! / 1_000n;
    },
  };
}

/**
 * The libc this process already runs on, found in /proc/self/maps by its absolute path
 * (glibc's libc.so.6 or musl's loader, which is its libc), so no other folder is searched.
 */
function openLibc(): Libc {
  const problems: string[] = [];

  for (const path of libcCandidates()) {
    try {
      return ffi().dlopen(path, libcSymbols).symbols;
    } catch (error) {
      const message = (error as Error).message;
      // No JIT means no bun:ffi at all; trying other names would only bury that.
      if (/requires the JIT/.test(message)) throw new Error(message);
      problems.push(`${path}: ${message}`);
    }
  }

  throw new Error(`cannot load libc through bun:ffi (${problems.join("; ") || "none found"})`);
}

function libcCandidates(): string[] {
  let maps = "";
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch {
    // Without /proc the usual names remain.
  }

  const mapped = maps
    .split("\n")
    .map((line) => line.split(/\s+/)[5] ?? "")
    .filter((path) => /\/(libc\.so\.6|libc\.musl-[\w-]+\.so\.1|ld-musl-[\w-]+\.so\.1)$/.test(path));

  return [...new Set(mapped), "libc.so.6"];
}

/** struct sockaddr_un for a path, or for an abstract name (leading @, sent as a NUL byte). */
function socketAddress(socket: string): { bytes: Uint8Array; length: number } | undefined {
  if (!socket.startsWith("/") && !socket.startsWith("@")) return undefined;

  const path = Buffer.from(socket);
  const abstract = socket.startsWith("@");
  if (abstract) path[0] = 0;
  if (path.length > sockaddrSize - 3) return undefined;

  const bytes = new Uint8Array(sockaddrSize);
  new DataView(bytes.buffer).setUint16(0, AF_UNIX, true);
  bytes.set(path, 2);
  // A path ends in NUL; an abstract name is exactly its bytes.
  return { bytes, length: 2 + path.length + (abstract ? 0 : 1) };
}

function sendDatagram(
  libc: Libc,
  address: { bytes: Uint8Array; length: number },
  message: Uint8Array,
): string | undefined {
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return `socket() failed (${errno(libc)})`;

  try {
    const sent = libc.sendto(
      fd,
      message,
      message.length,
      MSG_NOSIGNAL,
      address.bytes,
      address.length,
    );
    if (sent < 0) return `sendto() failed (${errno(libc)})`;
    return undefined;
  } finally {
    libc.close(fd);
  }
}

/** The errno name, e.g. ECONNREFUSED when nothing listens on the socket. */
function errno(libc: Libc): string {
  const code = ffi().read.i32(libc.__errno_location()!);
  const name = Object.entries(errnoNames()).find(([, value]) => value === code)?.[0];
  return name ?? `errno ${code}`;
}
