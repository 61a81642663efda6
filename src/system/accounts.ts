/**
 * Looks up users and groups in /etc/passwd and /etc/group. Devices built with Yocto,
 * Buildroot or Debian keep their system accounts there; Bun has no getpwnam binding.
 */
import { readFileSync } from "node:fs";
import type { Principal } from "../config/schema.ts";

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export interface Group {
  name: string;
  gid: number;
  members: string[];
}

/** Where the account files are; tests and `install.sh --root` point this into an image. */
export interface AccountFiles {
  passwd: string;
  group: string;
}

export const systemAccountFiles: AccountFiles = { passwd: "/etc/passwd", group: "/etc/group" };

/** The largest uid or gid extprov can set: Bun's chown, setuid and setgid take an int32. */
export const maxAccountId = 2_147_483_647;

/** The number a principal writes, as given or as a quoted string of digits; any size. */
function writtenNumber(principal: Principal): number | undefined {
  if (typeof principal === "number") return principal;
  return /^\d+$/.test(principal) ? Number(principal) : undefined;
}

/**
 * The numeric id a principal gives: a number, or a quoted string of digits that names no
 * account (as chown(1) takes it: a name first, then a number); none beyond maxAccountId.
 */
function numericId(principal: Principal): number | undefined {
  const id = writtenNumber(principal);
  return id !== undefined && id <= maxAccountId ? id : undefined;
}

/** What to say of a user or group that gives no id: unknown, or a number no id can be. */
export function unresolvedAccount(
  principal: Principal,
  kind: "user" | "group",
  createHint: string,
): { problem: string; hint: string } {
  const number = writtenNumber(principal);
  if (number !== undefined && number > maxAccountId) {
    return {
      problem: `${principal} is beyond the largest ${kind === "user" ? "uid" : "gid"} there can be, ${maxAccountId}`,
      hint: `give the ${kind}'s name, or its real id`,
    };
  }

  return { problem: `no such ${kind} on this system`, hint: createHint };
}

/** Finds the entry named `principal`, or else the one with its numeric id. */
function findEntry<T extends { name: string }>(
  entries: T[],
  principal: Principal,
  idOf: (entry: T) => number,
): T | undefined {
  const byName = typeof principal === "string" && entries.find((e) => e.name === principal);
  if (byName) return byName;

  const id = numericId(principal);
  return id === undefined ? undefined : entries.find((entry) => idOf(entry) === id);
}

/** Resolves a user name or uid. Returns undefined when no entry has it. */
export function findUser(user: Principal, files = systemAccountFiles): Account | undefined {
  const entries = readEntries(files.passwd).map(([name, , uid, gid]) => ({
    name: name ?? "",
    uid: Number(uid),
    gid: Number(gid),
  }));

  return findEntry(entries, user, (entry) => entry.uid);
}

/** Resolves a group name or gid. Returns undefined when no entry has it. */
export function findGroup(group: Principal, files = systemAccountFiles): Group | undefined {
  const entries = readEntries(files.group).map(([name, , gid, members]) => ({
    name: name ?? "",
    gid: Number(gid),
    members: members ? members.split(",").filter(Boolean) : [],
  }));

  return findEntry(entries, group, (entry) => entry.gid);
}

/** A uid for a user given by name or number; a numeric uid needs no entry. */
export function resolveUid(user: Principal, files = systemAccountFiles): number | undefined {
  return findUser(user, files)?.uid ?? numericId(user);
}

/** A gid for a group given by name or number; a numeric gid needs no entry. */
export function resolveGid(group: Principal, files = systemAccountFiles): number | undefined {
  return findGroup(group, files)?.gid ?? numericId(group);
}

function readEntries(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }

  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

/**
 * Whether no user but those in `uids` belongs to group `gid`: none other has it as primary
 * group in /etc/passwd or is listed as its member in /etc/group. A user private group (one
 * per user, as Debian, Ubuntu and Fedora make them, and as a umask of 002 assumes) holds
 * its user alone. A group /etc/group does not know is not taken to be one.
 */
export function groupHoldsOnly(gid: number, uids: number[], files = systemAccountFiles): boolean {
  // Every line with this gid: groupadd -o can give one gid several names and member lists.
  const groups = readEntries(files.group).filter(([, , id]) => Number(id) === gid);
  if (groups.length === 0) return false;
  const members = groups.flatMap(([, , , list]) => (list ? list.split(",").filter(Boolean) : []));

  const users = readEntries(files.passwd).map(([name, , uid, primary]) => ({
    name: name ?? "",
    uid: Number(uid),
    gid: Number(primary),
  }));
  if (users.some((user) => user.gid === gid && !uids.includes(user.uid))) return false;

  return members.every((member) => {
    const user = users.find((candidate) => candidate.name === member);
    return user !== undefined && uids.includes(user.uid);
  });
}
