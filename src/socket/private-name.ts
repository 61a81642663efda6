/**
 * The name extprov binds its socket by before linking it at the configured path (see
 * bind.ts). The kernel keeps the name a socket was bound by, so /proc/net/unix lists a
 * serving extprov under this name, never under the configured one: the name carries a
 * checksum of the configured file name, by which another start knows that socket is held.
 */
const prefix = ".extprov-";

/** `.extprov-<pid>-<checksum of name>`: unique per process, and tied to `name`. */
export function privateNameFor(name: string, pid = process.pid): string {
  return `${prefix}${pid.toString(36)}-${checksumOf(name)}`;
}

/** Whether `boundName` is what some extprov bound a socket by before linking it at `name`. */
export function isPrivateNameOf(boundName: string, name: string): boolean {
  if (!boundName.startsWith(prefix)) return false;

  const [pid, checksum, ...rest] = boundName.slice(prefix.length).split("-");
  return rest.length === 0 && /^[0-9a-z]+$/.test(pid!) && checksum === checksumOf(name);
}

function checksumOf(name: string): string {
  return Bun.hash.crc32(name).toString(36);
}
