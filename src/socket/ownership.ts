/**
 * Works out the socket's owner, group and mode from the configuration. Unset owner and
 * group default to the user and group extprov serves as.
 */
import type { Config } from "../config/load.ts";
import type { Principal } from "../config/schema.ts";
import { ConfigError, ConfigErrors, ListenError } from "../errors.ts";
import { log } from "../log.ts";
import {
  resolveGid,
  resolveUid,
  systemAccountFiles,
  unresolvedAccount,
  type AccountFiles,
} from "../system/accounts.ts";
import type { Identity } from "../system/privileges.ts";
import { octal, type SocketOwnership } from "./bind.ts";

/**
 * Resolves names to ids. The configuration's checks have refused unknown names and a mode
 * open to every user unless forced (`socketProblems`); this warns about what is left.
 */
export function resolveSocketOwnership(
  config: Config,
  service: Identity,
  files: AccountFiles = systemAccountFiles,
): SocketOwnership {
  if (config.listen.kind !== "unix")
    throw new Error("socket ownership applies to unix endpoints only");
  const { owner, group, mode } = config.listen;

  const problems = socketProblems(config.file, config.listen, config.security, files);
  if (problems.length > 0) throw new ConfigErrors(problems);
  const uid = owner === undefined ? service.uid : resolveUid(owner, files)!;
  const gid = group === undefined ? service.gid : resolveGid(group, files)!;
  checkCanGive(uid, gid);

  if ((mode & 0o002) !== 0) {
    log.warn("socket open to every user", {
      mode: octal(mode),
      reason: "security.allowWorldAccessibleSocket is set",
    });
  }
  warnReadWithoutWrite(mode);
  return { uid, gid, mode };
}

/**
 * Without root, chown(2) gives a file only to its owner and to a group the owner is in:
 * said here, before anything is bound, so that check refuses it as serve would.
 */
function checkCanGive(uid: number, gid: number): void {
  const euid = process.geteuid!();
  if (euid === 0) return;

  const groups = [process.getegid!(), ...process.getgroups!()];
  if (uid === euid && groups.includes(gid)) return;
  throw new ListenError(
    `cannot give the socket to uid ${uid} gid ${gid} as uid ${euid}`,
    "only root can give a file to another user or to a group it is not in; start extprov as root with runAs, or change listen.socket",
  );
}

/**
 * What the configuration's socket owner, group and mode cannot be on this system: names
 * with no account, and a mode open to every user unless `allowWorldAccessibleSocket`.
 */
export function socketProblems(
  file: string,
  socket: { owner?: Principal; group?: Principal; mode: number },
  security: { allowWorldAccessibleSocket: boolean },
  files: AccountFiles = systemAccountFiles,
): ConfigError[] {
  const problems: ConfigError[] = [];
  const { owner, group, mode } = socket;

  if (owner !== undefined && resolveUid(owner, files) === undefined) {
    const why = unresolvedAccount(owner, "user", "create the user, or give a numeric uid");
    problems.push(new ConfigError(file, "/listen/socket/owner", why.problem, why.hint));
  }

  if (group !== undefined && resolveGid(group, files) === undefined) {
    const hint = "create the group (install.sh creates iotedge), or give a numeric gid";
    const why = unresolvedAccount(group, "group", hint);
    problems.push(new ConfigError(file, "/listen/socket/group", why.problem, why.hint));
  }

  if ((mode & 0o002) !== 0 && !security.allowWorldAccessibleSocket) {
    problems.push(
      new ConfigError(
        file,
        "/listen/socket/mode",
        `mode ${octal(mode)} lets every user on the device read the device's credentials`,
        'use "0660" with the group iotedged runs in, or set security.allowWorldAccessibleSocket if you really mean it',
      ),
    );
  }

  return problems;
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
