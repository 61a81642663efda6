/**
 * The pid file, for SysV init and `extprov reload`. `serve --pid-file` writes it as root
 * once the socket is bound, before dropping privileges; `reload` reads it and signals the
 * process only when /proc/<pid>/cmdline shows it is extprov, so a stale file naming a
 * recycled pid never gets another program a SIGHUP.
 *
 * Written as root to a path from the command line, it must never destroy what a mistyped
 * path names (the configuration, a key): only a regular file holding nothing but a pid is
 * replaced, a symbolic link is never followed, and no existing file is ever truncated.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ListenError, ReloadError } from "../errors.ts";
import { log } from "../log.ts";
import { rootOnlyTrustProblem } from "./path-trust.ts";

/** What is at the pid file's path, looked at without following a link. */
type PidFileContent =
  | { kind: "missing" }
  | { kind: "link" }
  | { kind: "not a file" }
  | { kind: "empty" }
  | { kind: "not a pid" }
  | { kind: "pid"; pid: number };

/** A pid file is a few bytes ("4194304\n", the highest Linux pid, is 8); a larger one is not. */
const maxPidFileBytes = 16;

/**
 * Refuses to start unless the pid file may be written: nothing is there, or a stale pid
 * file is (its pid is returned). A live extprov's, a link, or any other file is left alone.
 */
export function checkPidFile(path: string): number | undefined {
  const file = resolve(path);
  checkPidFileFolder(file);
  const found = inspectPidFile(file);

  if (found.kind === "link") {
    throw new ListenError(
      `the pid file ${file} is a symbolic link, and extprov never writes through one`,
      "remove the link, or give --pid-file a path that is not one",
    );
  }

  // An empty file holds no pid to check: it is refused like any file extprov did not
  // write (extprov's own are renamed into place whole, so never empty).
  if (found.kind === "not a file" || found.kind === "not a pid" || found.kind === "empty") {
    throw new ListenError(
      `${file} ${notPidFile[found.kind]}: it does not look like a pid file and will not be overwritten`,
      "choose another --pid-file, such as /var/run/extprov.pid, or remove the file if it is not needed",
    );
  }

  if (found.kind === "pid" && found.pid !== process.pid && isExtprov(found.pid)) {
    throw new ListenError(
      `extprov already runs as pid ${found.pid} (pid file ${file})`,
      "stop it first, or give this one another --pid-file",
    );
  }

  return found.kind === "pid" && found.pid !== process.pid ? found.pid : undefined;
}

/**
 * Root writes the pid file by name (a new file, then a rename over the old one): whoever
 * could change a folder or link on the way could have that land on another file.
 */
function checkPidFileFolder(file: string): void {
  let problem;
  try {
    problem = rootOnlyTrustProblem({
      path: dirname(file),
      risk: "turn the pid file's path to other files",
      move: "put the pid file in a folder only root may change, such as /var/run",
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(`cannot look at the pid file's folder ${dirname(file)} (${code})`);
  }
  if (problem) throw new ListenError(`the pid file ${file}: ${problem[0]}`, problem[1]);
}

const notPidFile = {
  "not a file": "is not a regular file",
  "not a pid": "holds something other than a pid",
  empty: "is empty",
} as const;

/** Writes this process's pid, checking again first that the path may be written. */
export function writePidFile(path: string): void {
  const file = resolve(path);
  const stale = checkPidFile(file);

  // A new file that cannot exist yet (O_EXCL), then rename: no file is ever truncated or
  // written through a link, and a reader sees the old pid or the new one, never half a file.
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.${uniqueSuffix()}`);
  try {
    writeFileSync(temporary, `${process.pid}\n`, { mode: 0o644, flag: "wx" });
    renameSync(temporary, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    removeQuietly(temporary);
    throw new ListenError(
      `cannot write the pid file ${file} (${code})`,
      "create its folder, or start extprov as a user that may write there",
    );
  }

  if (stale !== undefined) {
    log.info("replaced a stale pid file", {
      file,
      reason: `it held pid ${stale}, which is not a running extprov`,
    });
  }
  log.info("wrote pid file", { file, pid: process.pid });
}

/** Removes the pid file if it is still a regular file naming this process. */
export function removePidFile(path: string): void {
  const file = resolve(path);
  const found = inspectQuietly(file);
  if (found.kind !== "pid" || found.pid !== process.pid) return;

  try {
    unlinkSync(file);
  } catch (error) {
    // After dropping root, the service user may not write the pid file's folder.
    const code = (error as NodeJS.ErrnoException).code;
    const reason = `cannot remove it (${code}); the next start replaces it`;
    log.info("pid file left in place", { file, reason });
  }
}

/** The pid of the running extprov the pid file names; throws `ReloadError` saying what is wrong. */
export function findRunningExtprov(path: string): number {
  const file = resolve(path);

  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "ENOENT"
        ? "is extprov running, started with this --pid-file?"
        : "run as root or as the user extprov runs as";
    throw new ReloadError(`cannot read the pid file ${file} (${code})`, hint);
  }

  const pid = parsePid(text);
  if (pid === undefined) {
    throw new ReloadError(
      `${file} holds no process id, so it is no pid file extprov wrote`,
      "check --pid-file: it names the file serve was started with (nothing was changed)",
    );
  }

  if (!existsSync(`/proc/${pid}`)) {
    throw new ReloadError(
      `no process ${pid} is running (pid file ${file})`,
      "the pid file is stale: extprov is not running",
    );
  }

  if (!isExtprov(pid)) {
    throw new ReloadError(
      `process ${pid} named in ${file} is not extprov`,
      "the pid file is stale; nothing was signalled",
    );
  }

  return pid;
}

/** Whether /proc shows `pid` running extprov: the executable, or bun with extprov's source. */
export function isExtprov(pid: number): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return false;
  }

  if (basename(argv[0] ?? "").startsWith("extprov")) return true;

  const entry = sourceEntry();
  const script = argv[1];
  if (entry === undefined || script === undefined || script === "") return false;

  try {
    const base = script.startsWith("/") ? "/" : readlinkSync(`/proc/${pid}/cwd`);
    return realpathSync(resolve(base, script)) === entry;
  } catch {
    return false;
  }
}

/** Run from source, this checkout's src/main.ts; compiled, there is none. */
function sourceEntry(): string | undefined {
  try {
    return realpathSync(join(import.meta.dir, "..", "main.ts"));
  } catch {
    return undefined;
  }
}

/** Looks at the path with lstat, so a link is seen as a link and nothing else is opened. */
function inspectPidFile(file: string): PidFileContent {
  let stats;
  try {
    stats = lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw cannotLookAt(file, error);
  }

  if (stats.isSymbolicLink()) return { kind: "link" };
  if (!stats.isFile()) return { kind: "not a file" };
  if (stats.size > maxPidFileBytes) return { kind: "not a pid" };
  if (stats.size === 0) return { kind: "empty" };

  const pid = parseWholePid(readWithoutFollowing(file));
  return pid === undefined ? { kind: "not a pid" } : { kind: "pid", pid };
}

/**
 * The file's first bytes, opened with O_NOFOLLOW (a link put there since the lstat is
 * refused by the kernel) and O_NONBLOCK (nor can a FIFO put there hang the start).
 */
function readWithoutFollowing(file: string): string {
  let descriptor;
  try {
    descriptor = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw cannotLookAt(file, error);
  }

  try {
    if (!fstatSync(descriptor).isFile()) return "";
    const buffer = Buffer.alloc(maxPidFileBytes);
    const length = readSync(descriptor, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString("latin1");
  } finally {
    closeSync(descriptor);
  }
}

function cannotLookAt(file: string, error: unknown): ListenError {
  const code = (error as NodeJS.ErrnoException).code;
  return new ListenError(
    `cannot look at the pid file ${file} (${code})`,
    "start extprov as a user that may read it, or choose another --pid-file",
  );
}

/** At shutdown a file that cannot be read is simply not ours to remove. */
function inspectQuietly(file: string): PidFileContent {
  try {
    return inspectPidFile(file);
  } catch {
    return { kind: "missing" };
  }
}

/** A pid file as extprov and init scripts write it: digits, at most one newline after. */
function parseWholePid(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,9}\n?$/.test(text)) return undefined;
  return Number.parseInt(text, 10);
}

/** Enough to keep two starts in the same second apart; O_EXCL guards against the rest. */
function uniqueSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

function parsePid(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Never written.
  }
}
