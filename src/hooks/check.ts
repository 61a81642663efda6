/**
 * Checks the reprovision hook at every load, so a start or reload never accepts a hook
 * that cannot run. The hook runs as extprov's user, who can read the device's
 * credentials: a program other users could change would hand those to them, and so
 * would a folder or link on its path that they could change, as they could put another
 * program in its place. `security.allowInsecureSecretFiles` is for secret files alone and
 * changes none of this: a program is not a secret, and need not live where modes are lost.
 */
import { lstatSync, readlinkSync, statSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/load.ts";
import { shownPath } from "../config/shown-path.ts";
import { ConfigError, ConfigErrors } from "../errors.ts";

const field = "/reprovision/hook/0";

/** What a problem found on the way to the hook says, and how to fix it. */
type Problem = [problem: string, hint: string];

/**
 * Throws `ConfigErrors` naming the hook when it is missing, not executable or unsafe, or
 * when a folder or link on its path is unsafe. `trustedOwners` are the uids that may own
 * the hook and what leads to it.
 */
export function checkHook(config: Config, trustedOwners: number[]): void {
  const program = config.reprovision.hook?.[0];
  if (program === undefined) return;

  const fail = (problem: string, hint?: string) =>
    new ConfigErrors([
      new ConfigError(config.file, field, `${shownPath(program)}: ${problem}`, hint),
    ]);

  let stats: Stats;
  try {
    stats = statSync(program);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw fail("does not exist", "install the hook there, or correct the path");
    }
    throw fail(
      `cannot be looked at by this user (${code})`,
      "make its folder reachable by the user extprov runs as",
    );
  }

  if (!stats.isFile()) throw fail("is not a regular file", "point hook at the program itself");
  if (!canExecute(stats)) {
    throw fail(
      "is not executable by the user extprov runs as",
      "chmod 0755 it, or 0700 if that user owns it",
    );
  }

  const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");

  if ((stats.mode & 0o022) !== 0) {
    throw fail(
      `mode ${mode} lets other users change a program that runs with access to the device's credentials`,
      "chmod go-w it",
    );
  }

  if (!trustedOwners.includes(stats.uid)) {
    throw fail(
      `is owned by uid ${stats.uid}, who could change it`,
      "chown it to root or to the user extprov runs as",
    );
  }

  let problem: Problem | undefined;
  try {
    problem = pathProblem(program, trustedOwners);
  } catch (error) {
    // Only if the path changed since statSync above.
    const code = (error as NodeJS.ErrnoException).code;
    throw fail(`changed while it was checked (${code})`, "check again once it is in place");
  }
  if (problem) throw fail(...problem);
}

/** Linux stops following symbolic links after this many (MAXSYMLINKS), with ELOOP. */
const maxLinks = 40;

/**
 * The first folder or link on the way to `program` that an untrusted user could change,
 * walked from / as exec(2) resolves the path, links followed wherever they lead: every
 * folder passed through must be owned by a trusted user and writable by no one else,
 * unless it is sticky (as /tmp is): there only root and an entry's owner may rename the
 * entry, so what the path takes from it must have a trusted owner too (a folder or the
 * program has to anyway; a link is checked for it here). `program` is absolute and exists.
 */
function pathProblem(program: string, trustedOwners: number[]): Problem | undefined {
  const pending = program.split("/");
  // A real folder, links resolved: its parent is what `..` in it leads to.
  let folder = "/";
  let links = 0;

  const rootProblem = folderProblem("/", lstatSync("/"), trustedOwners);
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
      const problem = linkProblem(path, stats, folder, trustedOwners);
      if (problem) return problem;
      // statSync(program) succeeded, so the chain ends; this only guards the loop.
      if (++links > maxLinks) return undefined;

      const target = readlinkSync(path);
      if (target.startsWith("/")) folder = "/";
      pending.unshift(...target.split("/"));
      continue;
    }

    // The program itself, which checkHook has checked.
    if (!pending.some((rest) => rest !== "" && rest !== ".")) return undefined;
    const problem = folderProblem(path, stats, trustedOwners);
    if (problem) return problem;
    folder = path;
  }

  return undefined;
}

function folderProblem(folder: string, stats: Stats, trustedOwners: number[]): Problem | undefined {
  const shown = shownPath(folder);
  const fix = "or move the hook to a folder only root may change";

  if (!trustedOwners.includes(stats.uid)) {
    return [
      `${shown}, a folder on its path, is owned by uid ${stats.uid}, who could put another program in the hook's place`,
      `chown it to root or to the user extprov runs as, ${fix}`,
    ];
  }

  const sticky = (stats.mode & 0o1000) !== 0;
  if ((stats.mode & 0o022) !== 0 && !sticky) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
    return [
      `${shown}, a folder on its path, has mode ${mode}: other users may put another program in the hook's place`,
      `chmod go-w ${shown}, ${fix}`,
    ];
  }

  return undefined;
}

/**
 * A link is changed by replacing it: in a folder that passed `folderProblem` only trusted
 * users may, but in a sticky folder others may write the link's owner may too.
 */
function linkProblem(
  link: string,
  stats: Stats,
  folder: string,
  trustedOwners: number[],
): Problem | undefined {
  if (trustedOwners.includes(stats.uid)) return undefined;
  const folderStats = lstatSync(folder);
  if ((folderStats.mode & 0o022) === 0) return undefined;

  return [
    `${shownPath(link)}, a symbolic link on its path, is owned by uid ${stats.uid}, who may replace it in ${shownPath(folder)} though others may not`,
    "chown -h it to root or to the user extprov runs as, or point the configuration at the hook itself",
  ];
}

/**
 * Execute permission for the effective ids, which a trial load as the service user sets;
 * access(2) would answer for the real ids (still root) instead.
 */
function canExecute(stats: Stats): boolean {
  const uid = process.geteuid!();
  if (uid === 0) return (stats.mode & 0o111) !== 0;
  if (uid === stats.uid) return (stats.mode & 0o100) !== 0;

  const groups = new Set([process.getegid!(), ...process.getgroups!()]);
  if (groups.has(stats.gid)) return (stats.mode & 0o010) !== 0;
  return (stats.mode & 0o001) !== 0;
}
