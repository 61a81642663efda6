/**
 * A stand-in for systemd's notification socket: python3 binds an AF_UNIX datagram socket
 * in the test's folder and prints one JSON line per message, with the sender's pid and
 * uid (SCM_CREDENTIALS, as systemd reads them), its effective uid from /proc, the time
 * on CLOCK_MONOTONIC, and what was at the watched socket path at that very moment.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const python = "/usr/bin/python3";

const listenerScript = `
import json, os, socket, stat, struct, sys, time
address, watch = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\\0" + address[1:] if address.startswith("@") else address)
if not address.startswith("@"):
    os.chmod(address, 0o666)
print(json.dumps({"listening": True}), flush=True)
for _ in range(200):
    data, ancillary, _flags, _sender = s.recvmsg(4096, socket.CMSG_SPACE(12))
    now = time.monotonic_ns() // 1000
    pid = uid = euid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, _gid = struct.unpack("iII", payload[:12])
    try:
        st = os.lstat(watch)
        at = {"socket": stat.S_ISSOCK(st.st_mode), "mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}
    except FileNotFoundError:
        at = None
    try:
        with open(f"/proc/{pid}/status") as status:
            euid = next(int(line.split()[2]) for line in status if line.startswith("Uid:"))
    except (OSError, StopIteration):
        pass
    fields = dict(line.split("=", 1) for line in data.decode().split("\\n") if "=" in line)
    print(json.dumps({"fields": fields, "pid": pid, "uid": uid, "euid": euid, "socketAtPath": at, "monotonicUsec": now}), flush=True)
`;

const senderScript = `
import socket, sys
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), "\\0" + address[1:] if address.startswith("@") else address)
`;

export interface Notification {
  fields: Record<string, string>;
  pid: number;
  uid: number;
  euid: number | null;
  socketAtPath: { socket: boolean; mode: number; uid: number; gid: number } | null;
  monotonicUsec: number;
}

export interface NotifyListener {
  /** The value for NOTIFY_SOCKET. */
  address: string;
  notifications: Notification[];
  /** Resolves with the first notification (after `after` earlier ones) that has `field`. */
  waitFor(field: string, after?: number): Promise<Notification>;
  /** Sends MARKER=1 from another process and waits for it: every earlier message is in. */
  drain(): Promise<Notification[]>;
  [Symbol.dispose](): void;
}

/** Fails with the Debian package to install when python3 is missing. */
export function requirePython(): void {
  if (!existsSync(python)) {
    throw new Error(
      `${python} is missing: apt-get install python3 (the readiness tests use it as systemd's notify socket)`,
    );
  }
}

/** Listens on `address` (a path, or @name for the abstract namespace), watching `watch`. */
export async function notifyListener(
  folder: string,
  address: string,
  watch: string,
): Promise<NotifyListener> {
  requirePython();
  const script = join(folder, "notify-listener.py");
  writeFileSync(script, listenerScript);
  const child = Bun.spawn([python, script, address, watch], { stdout: "pipe", stderr: "inherit" });

  const notifications: Notification[] = [];
  const wakers = new Set<() => void>();
  const listening = Promise.withResolvers<void>();

  (async () => {
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += new TextDecoder().decode(chunk);
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const parsed = JSON.parse(line);
        if (parsed.listening) listening.resolve();
        else notifications.push(parsed);
      }
      for (const wake of wakers) wake();
    }
    listening.reject(new Error("the notify listener exited"));
  })();
  await listening.promise;

  const waitFor = (field: string, after = 0) =>
    new Promise<Notification>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no ${field} notification; got ${JSON.stringify(notifications)}`)),
        15_000,
      );
      const check = () => {
        const found = notifications
          .slice(after)
          .find((notification) => field in notification.fields);
        if (found) done(undefined, found);
      };
      const done = (error?: Error, found?: Notification) => {
        clearTimeout(timer);
        wakers.delete(check);
        error ? reject(error) : resolve(found!);
      };
      wakers.add(check);
      check();
    });

  const drain = async () => {
    const sent = Bun.spawnSync([python, "-c", senderScript, address, "MARKER=1"]);
    if (sent.exitCode !== 0) {
      throw new Error(`could not send the marker: ${sent.stderr.toString()}`);
    }
    await waitFor("MARKER");
    return notifications.filter((notification) => !("MARKER" in notification.fields));
  };

  return { address, notifications, waitFor, drain, [Symbol.dispose]: () => child.kill() };
}
