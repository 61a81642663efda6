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

/** Resolves a user name or uid; a numeric uid needs no entry. Returns undefined when unknown. */
export function findUser(user: Principal, files = systemAccountFiles): Account | undefined {
  const entries = readEntries(files.passwd).map(([name, , uid, gid]) => ({
    name: name ?? "",
    uid: Number(uid),
    gid: Number(gid),
  }));

  if (typeof user === "number") return entries.find((entry) => entry.uid === user);
  return entries.find((entry) => entry.name === user);
}

/** Resolves a group name or gid. Returns undefined when unknown. */
export function findGroup(group: Principal, files = systemAccountFiles): Group | undefined {
  const entries = readEntries(files.group).map(([name, , gid, members]) => ({
    name: name ?? "",
    gid: Number(gid),
    members: members ? members.split(",").filter(Boolean) : [],
  }));

  if (typeof group === "number") return entries.find((entry) => entry.gid === group);
  return entries.find((entry) => entry.name === group);
}

/** A uid for a user given by name or number; numbers are taken as they are. */
export function resolveUid(user: Principal, files = systemAccountFiles): number | undefined {
  return typeof user === "number" ? user : findUser(user, files)?.uid;
}

/** A gid for a group given by name or number; numbers are taken as they are. */
export function resolveGid(group: Principal, files = systemAccountFiles): number | undefined {
  return typeof group === "number" ? group : findGroup(group, files)?.gid;
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
