/**
 * Reads a file that holds a secret, after checking that no other user can read or change
 * it: a key readable by everyone on the device is a key given away.
 */
import { lstatSync, readFileSync, readlinkSync, statSync, type Stats } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { shownPath } from "../config/shown-path.ts";
import { groupHoldsOnly } from "../system/accounts.ts";
import { trustProblem } from "../system/path-trust.ts";

/** A key or a PEM chain is a few KiB; a larger file is the wrong one, and is not read. */
export const maxSecretBytes = 1024 * 1024;

export interface SecretFileRules {
  /** The configuration file that names this secret, for messages. */
  configFile: string;
  /** Skip the mode and owner checks, for images whose file system cannot keep modes. */
  allowInsecure: boolean;
  /** uids that may own a secret file: root, and the user extprov serves as. */
  trustedOwners: number[];
}

/** Reads a secret file as bytes; throws a `ConfigError` naming `field` when it is unsafe or unusable. */
export function readSecretFile(path: string, field: string, rules: SecretFileRules): Buffer {
  const fail = failureFor(path, field, rules);
  const stats = checkSecretFile(path, field, rules);
  if (stats.size > maxSecretBytes) {
    throw fail(
      `is ${stats.size} bytes, too large for a key or certificate (limit ${maxSecretBytes})`,
      "point it at the file that holds the secret",
    );
  }

  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw fail(...describeOpenError(path, (error as NodeJS.ErrnoException).code));
  }

  if (bytes.toString("utf8").trim() === "") throw fail("is empty", "write the secret into it");
  return bytes;
}

/**
 * Checks that `path` is a regular file only trusted users can read or change; also used
 * for a configuration file that holds a secret inline.
 */
export function checkSecretFile(path: string, field: string, rules: SecretFileRules): Stats {
  const fail = failureFor(path, field, rules);

  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    throw fail(...describeOpenError(path, (error as NodeJS.ErrnoException).code));
  }

  if (!stats.isFile())
    throw fail("is not a regular file", "point it at the file that holds the secret");
  if (!rules.allowInsecure) {
    checkOwnership(stats, rules, fail);
    checkWayTo(path, rules, fail);
  }
  return stats;
}

/** Whoever could put another file in its place would choose the identity extprov serves. */
function checkWayTo(
  path: string,
  rules: SecretFileRules,
  fail: (problem: string, hint?: string) => ConfigError,
): void {
  let problem;
  try {
    problem = trustProblem({
      path,
      trustedOwners: rules.trustedOwners,
      risk: "put another secret in its place",
      move: "keep the secrets in a folder only root or the service user may change (as install.sh makes /etc/extprov/secrets)",
    });
  } catch (error) {
    throw fail(`changed while it was checked (${(error as NodeJS.ErrnoException).code})`);
  }
  if (problem) throw fail(...problem);
}

function failureFor(path: string, field: string, rules: SecretFileRules) {
  return (problem: string, hint?: string) =>
    new ConfigError(rules.configFile, field, `${shownPath(path)}: ${problem}`, hint);
}

function checkOwnership(
  { mode, uid, gid }: Stats,
  rules: SecretFileRules,
  fail: (problem: string, hint?: string) => ConfigError,
): void {
  const octal = (mode & 0o7777).toString(8).padStart(4, "0");

  if ((mode & 0o007) !== 0) {
    throw fail(
      `mode ${octal} lets every user on the device use it`,
      "chmod 0600 it (or set security.allowInsecureSecretFiles on file systems without modes)",
    );
  }

  // A group is fine when it holds trusted users alone (root:extprov, a user private group).
  const sharedGroup = !groupHoldsOnly(gid, rules.trustedOwners);
  if ((mode & 0o020) !== 0 && sharedGroup) {
    throw fail(`mode ${octal} lets its group change it`, "chmod 0600 or 0640 it");
  }
  if ((mode & 0o040) !== 0 && sharedGroup) {
    throw fail(
      `mode ${octal} lets group ${gid}, which other users belong to, read it`,
      "chmod 0600 it, or give it to the service user's own group",
    );
  }

  if (!rules.trustedOwners.includes(uid)) {
    throw fail(
      `is owned by uid ${uid}, who could change or replace it`,
      "chown it to root or to the user extprov runs as",
    );
  }
}

function describeOpenError(path: string, code: string | undefined): [string, string?] {
  const target = code === "ENOENT" ? danglingTarget(path) : undefined;
  if (target !== undefined) {
    return [
      `is a symbolic link whose target ${shownPath(resolve(dirname(path), target))} does not exist`,
      "create the target, or point the link or the configuration at the file that holds the secret",
    ];
  }
  if (code === "ENOENT") return ["does not exist", "check the path, or create the file"];
  if (code === "EACCES")
    return ["cannot be read by this user", "make it readable by the user extprov runs as"];
  if (code === "ELOOP") return ["is a symbolic link loop", "point it at the real file"];
  return [`cannot be read (${code})`];
}

/**
 * The missing path a chain of symbolic links from `path` ends at; undefined when `path`
 * is not a link, or the chain cannot be followed.
 */
function danglingTarget(path: string): string | undefined {
  let current = path;

  // 40 hops, as Linux allows (MAXSYMLINKS) before ELOOP.
  for (let hop = 0; hop < 40; hop++) {
    try {
      if (!lstatSync(current).isSymbolicLink()) return undefined;
      current = resolve(dirname(current), readlinkSync(current));
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
      return missing && current !== path ? current : undefined;
    }
  }

  return undefined;
}
