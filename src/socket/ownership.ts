/**
 * Works out the socket's owner, group and mode from the configuration. Unset owner and
 * group default to the user and group extprov serves as.
 */
import type { Config } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import { log } from "../log.ts";
import {
  resolveGid,
  resolveUid,
  systemAccountFiles,
  type AccountFiles,
} from "../system/accounts.ts";
import type { Identity } from "../system/privileges.ts";
import { octal, type SocketOwnership } from "./bind.ts";

/** Resolves names to ids and refuses a mode that lets every user connect, unless forced. */
export function resolveSocketOwnership(
  config: Config,
  service: Identity,
  files: AccountFiles = systemAccountFiles,
): SocketOwnership {
  if (config.listen.kind !== "unix")
    throw new Error("socket ownership applies to unix endpoints only");
  const { owner, group, mode } = config.listen;

  const uid = owner === undefined ? service.uid : resolveUid(owner, files);
  if (uid === undefined) {
    throw new ConfigError(
      config.file,
      "/listen/socket/owner",
      "no such user on this system",
      "create the user, or give a numeric uid",
    );
  }

  const gid = group === undefined ? service.gid : resolveGid(group, files);
  if (gid === undefined) {
    throw new ConfigError(
      config.file,
      "/listen/socket/group",
      "no such group on this system",
      "create the group (install.sh creates iotedge), or give a numeric gid",
    );
  }

  checkWorldAccess(config, mode);
  warnReadWithoutWrite(mode);
  return { uid, gid, mode };
}

/** Connecting needs write permission: a read bit alone on a socket lets no one in. */
function warnReadWithoutWrite(mode: number): void {
  for (const [who, read, write, fix] of [
    ["its group", 0o040, 0o020, '"0660" lets the group connect, "0600" only the owner'],
    ["other users", 0o004, 0o002, "clear the read bit"],
  ] as const) {
    if ((mode & read) !== 0 && (mode & write) === 0) {
      const reason = `${who} can read but not connect: connecting needs write permission`;
      log.warn("socket read bit without write", { mode: octal(mode), reason, hint: fix });
    }
  }
}

function checkWorldAccess(config: Config, mode: number): void {
  if ((mode & 0o002) === 0) return;

  if (!config.security.allowWorldAccessibleSocket) {
    throw new ConfigError(
      config.file,
      "/listen/socket/mode",
      `mode ${octal(mode)} lets every user on the device read the device's credentials`,
      'use "0660" with the group iotedged runs in, or set security.allowWorldAccessibleSocket if you really mean it',
    );
  }

  log.warn("socket open to every user", {
    mode: octal(mode),
    reason: "security.allowWorldAccessibleSocket is set",
  });
}
