/**
 * Checks the reprovision hook at every load, so a start or reload never accepts a hook
 * that cannot run. The hook runs as extprov's user, who can read the device's
 * credentials: a program other users could change would hand those to them, and so
 * would a folder or link on its path that they could change, as they could put another
 * program in its place. `security.allowInsecureSecretFiles` is for secret files alone and
 * changes none of this: a program is not a secret, and need not live where modes are lost.
 */
import { statSync, type Stats } from "node:fs";
import type { Config } from "../config/load.ts";
import { shownPath } from "../config/shown-path.ts";
import { ConfigError, ConfigErrors } from "../errors.ts";
import { trustProblem, writableByOthers, type TrustProblem } from "../system/path-trust.ts";

/**
 * Throws `ConfigErrors` naming the hook when it is missing, not executable or unsafe, or
 * when a folder or link on its path is unsafe. An argument that names an existing file
 * (`["/bin/sh", "/usr/libexec/extprov/reprovision.sh"]`) is held to the same rules: an
 * interpreter runs it. `trustedOwners` are the uids that may own them and what leads there.
 */
export function checkHook(config: Config, trustedOwners: number[]): void {
  const [program, ...args] = config.reprovision.hook ?? [];
  if (program === undefined) return;

  checkRunFile(config.file, 0, program, trustedOwners);
  args.forEach((arg, index) => {
    if (arg.startsWith("/") && isFile(arg))
      checkRunFile(config.file, index + 1, arg, trustedOwners);
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The program (`index` 0) or a file an argument names, which it runs as code. */
function checkRunFile(file: string, index: number, path: string, trustedOwners: number[]): void {
  const fail = (problem: string, hint?: string) =>
    new ConfigErrors([
      new ConfigError(file, `/reprovision/hook/${index}`, `${shownPath(path)}: ${problem}`, hint),
    ]);
  const what = index === 0 ? "a program" : "a file the hook runs";

  let stats: Stats;
  try {
    stats = statSync(path);
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
  if (index === 0 && !canExecute(stats)) {
    throw fail(
      "is not executable by the user extprov runs as",
      "chmod 0755 it, or 0700 if that user owns it",
    );
  }

  const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");

  if (writableByOthers(stats, trustedOwners)) {
    throw fail(
      `mode ${mode} lets other users change ${what} that runs with access to the device's credentials`,
      "chmod go-w it",
    );
  }

  if (!trustedOwners.includes(stats.uid)) {
    throw fail(
      `is owned by uid ${stats.uid}, who could change it`,
      "chown it to root or to the user extprov runs as",
    );
  }

  let problem: TrustProblem | undefined;
  try {
    problem = trustProblem({
      path,
      trustedOwners,
      risk: `put another ${index === 0 ? "program" : "file"} in the hook's place`,
      move: "move the hook to a folder only root may change",
    });
  } catch (error) {
    // Only if the path changed since statSync above.
    const code = (error as NodeJS.ErrnoException).code;
    throw fail(`changed while it was checked (${code})`, "check again once it is in place");
  }
  if (problem) throw fail(...problem);
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
