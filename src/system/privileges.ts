/**
 * Who the process runs as. Started as root, extprov binds the socket, hands it to its
 * owner, then drops to `runAs` for good before it reads any request.
 */
import type { Config } from "../config/load.ts";
import { ConfigError, ConfigErrors, ListenError } from "../errors.ts";
import { log } from "../log.ts";
import {
  findUser,
  resolveGid,
  resolveUid,
  type AccountFiles,
  systemAccountFiles,
  unresolvedAccount,
} from "./accounts.ts";

export interface Identity {
  uid: number;
  gid: number;
  name?: string;
}

/** The user and group to serve as: `runAs` if configured, otherwise the current ones. */
export function resolveServiceIdentity(
  config: Config,
  files: AccountFiles = systemAccountFiles,
): Identity {
  if (!config.runAs) return { uid: process.geteuid!(), gid: process.getegid!() };

  const found = lookUpRunAs(config.file, config.runAs, files);
  if (Array.isArray(found)) throw new ConfigErrors(found);
  return found;
}

/** What in `runAs` this system has no account for; empty when it names a user and group. */
export function runAsProblems(
  file: string,
  runAs: NonNullable<Config["runAs"]>,
  files: AccountFiles = systemAccountFiles,
): ConfigError[] {
  const found = lookUpRunAs(file, runAs, files);
  return Array.isArray(found) ? found : [];
}

function lookUpRunAs(
  file: string,
  { user, group }: NonNullable<Config["runAs"]>,
  files: AccountFiles,
): Identity | ConfigError[] {
  const problems: ConfigError[] = [];
  const account = findUser(user, files);
  const uid = resolveUid(user, files);
  if (uid === undefined) {
    const why = unresolvedAccount(
      user,
      "user",
      "create it (install.sh does), or give a numeric uid",
    );
    problems.push(new ConfigError(file, "/runAs/user", why.problem, why.hint));
  }

  const gid = group === undefined ? account?.gid : resolveGid(group, files);
  if (group !== undefined && gid === undefined) {
    const why = unresolvedAccount(group, "group", "create it, or give a numeric gid");
    problems.push(new ConfigError(file, "/runAs/group", why.problem, why.hint));
  } else if (uid !== undefined && gid === undefined) {
    problems.push(
      new ConfigError(
        file,
        "/runAs/user",
        "cannot tell which group to run as: no account has this uid",
        "give runAs.group, by name or number",
      ),
    );
  }

  if (uid === undefined || gid === undefined) return problems;
  return { uid, gid, name: account?.name };
}

/** True when the process must switch user after binding. */
export function needsDrop(service: Identity): boolean {
  return process.geteuid!() !== service.uid || process.getegid!() !== service.gid;
}

/**
 * Runs `work` with the effective ids of `service` and returns to root after: a trial run
 * of what the service user must be able to do, while root can still clean up on failure.
 */
export function asServiceUser<T>(service: Identity, work: () => T): T {
  const groups = process.getgroups!();
  process.setgroups!([service.gid]);
  process.setegid!(service.gid);
  process.seteuid!(service.uid);

  try {
    return work();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
    process.setgroups!(groups);
  }
}

/** Switches to `service` for good; supplementary groups are dropped to its one group. */
export function dropPrivileges(service: Identity): void {
  if (process.geteuid!() !== 0) {
    throw new ListenError(
      `only root can switch to uid ${service.uid}`,
      "start extprov as root, or remove runAs to serve as the current user",
    );
  }

  process.setgroups!([service.gid]);
  process.setgid!(service.gid);
  process.setuid!(service.uid);

  if (process.getuid!() !== service.uid || process.geteuid!() !== service.uid || canRegainRoot()) {
    throw new ListenError("could not drop root privileges", "check the runAs user");
  }

  log.info("dropped privileges", { uid: service.uid, gid: service.gid, user: service.name });
}

function canRegainRoot(): boolean {
  try {
    process.setuid!(0);
    return true;
  } catch {
    return false;
  }
}
