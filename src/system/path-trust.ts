/**
 * Whether other users could put another file in the place of one extprov relies on (the
 * hook it runs, the configuration, a key, the socket): not by writing the file, but by
 * changing a folder or a symbolic link on the way to it, as they could rename the file
 * away and put their own there.
 */
import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { shownPath } from "../config/shown-path.ts";
import { groupHoldsOnly } from "./accounts.ts";

/** What a problem found on the way says, and how to fix it. */
export type TrustProblem = [problem: string, hint: string];

export interface TrustedPath {
  /** An absolute path that exists. */
  path: string;
  /** The uids that may own what leads to it. */
  trustedOwners: number[];
  /** What others could do through an unsafe folder, e.g. "put another program in the hook's place". */
  risk: string;
  /** The second way out of the problem, e.g. "move the hook to a folder only root may change". */
  move: string;
  /** Whom to give a folder or link to; "root or the user extprov runs as" unless said. */
  owners?: string;
  /** When `path` is a folder: leave the folder it finally leads to out (its owner may differ). */
  excludeLast?: boolean;
}

const defaultOwners = "root or to the user extprov runs as";

/** Linux stops following symbolic links after this many (MAXSYMLINKS), with ELOOP. */
const maxLinks = 40;

/**
 * The first folder or link on the way to `path` that an untrusted user could change,
 * walked from / as the kernel resolves the path, links followed wherever they lead: every
 * folder passed through must be owned by a trusted user and writable by no one else,
 * unless it is sticky (as /tmp is): there only root and an entry's owner may rename the
 * entry, so what the path takes from it must have a trusted owner too (a folder has to
 * anyway; a link is checked for it here). When `path` is itself a folder, it counts as
 * one passed through; a file at its end is the caller's to check.
 *
 * Throws the file system's error if the path changes while it is walked.
 */
export function trustProblem(target: TrustedPath): TrustProblem | undefined {
  const pending = target.path.split("/");
  // A real folder, links resolved: its parent is what `..` in it leads to.
  let folder = "/";
  let links = 0;

  const rootProblem = folderProblem("/", lstatSync("/"), target);
  if (rootProblem) return rootProblem;

  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      folder = dirname(folder);
      continue;
    }

    const path = join(folder, name);
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) {
      const problem = linkProblem(path, stats, folder, target);
      if (problem) return problem;
      // The path exists, so the chain ends; this only guards the loop.
      if (++links > maxLinks) return undefined;

      const next = readlinkSync(path);
      if (next.startsWith("/")) folder = "/";
      pending.unshift(...next.split("/"));
      continue;
    }

    const last = !pending.some((rest) => rest !== "" && rest !== ".");
    if (last && (!stats.isDirectory() || target.excludeLast)) return undefined;
    const problem = folderProblem(path, stats, target);
    if (problem) return problem;
    folder = path;
  }

  return undefined;
}

/**
 * `trustProblem` for a way root works on by name (the socket folder's, the pid file's):
 * only root may change it, or extprov's own user when it was started without root.
 */
export function rootOnlyTrustProblem(
  target: Omit<TrustedPath, "trustedOwners" | "owners">,
): TrustProblem | undefined {
  const euid = process.geteuid!();
  return trustProblem({
    ...target,
    trustedOwners: [0, euid],
    owners: euid === 0 ? "root" : undefined,
  });
}

function folderProblem(
  folder: string,
  stats: Stats,
  target: TrustedPath,
): TrustProblem | undefined {
  const shown = shownPath(folder);
  const fix = `or ${target.move}`;

  if (!target.trustedOwners.includes(stats.uid)) {
    return [
      `${shown}, a folder on its path, is owned by uid ${stats.uid}, who could ${target.risk}`,
      `chown it to ${target.owners ?? defaultOwners}, ${fix}`,
    ];
  }

  const sticky = (stats.mode & 0o1000) !== 0;
  if (writableByOthers(stats, target.trustedOwners) && !sticky) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
    return [
      `${shown}, a folder on its path, has mode ${mode}: other users may ${target.risk}`,
      `chmod go-w ${shown}, ${fix}`,
    ];
  }

  return undefined;
}

/**
 * Whether users other than `trustedOwners` may write to it: every user (o+w), or its group
 * (g+w) unless that group holds trusted users alone (a user private group).
 */
export function writableByOthers(stats: Stats, trustedOwners: number[]): boolean {
  if ((stats.mode & 0o002) !== 0) return true;
  return (stats.mode & 0o020) !== 0 && !groupHoldsOnly(stats.gid, trustedOwners);
}

/**
 * A link is changed by replacing it: in a folder that passed `folderProblem` only trusted
 * users may, but in a sticky folder others may write the link's owner may too.
 */
function linkProblem(
  link: string,
  stats: Stats,
  folder: string,
  target: TrustedPath,
): TrustProblem | undefined {
  if (target.trustedOwners.includes(stats.uid)) return undefined;
  if (!writableByOthers(lstatSync(folder), target.trustedOwners)) return undefined;

  return [
    `${shownPath(link)}, a symbolic link on its path, is owned by uid ${stats.uid}, who may replace it in ${shownPath(folder)} though others may not`,
    `chown -h it to ${target.owners ?? defaultOwners}, or point the configuration at the file itself`,
  ];
}
