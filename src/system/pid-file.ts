/**
 * The pid file, for SysV init and `extprov reload`. `serve --pid-file` writes it as root
 * once the socket is bound, before dropping privileges; `reload` reads it and signals the
 * process only when /proc/<pid>/cmdline shows it is extprov, so a stale file naming a
 * recycled pid never gets another program a SIGHUP.
 */
import {
  existsSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ListenError, ReloadError } from "../errors.ts";
import { log } from "../log.ts";

/** Refuses to start when the pid file names another running extprov. */
export function checkPidFile(path: string): void {
  const file = resolve(path);
  const other = readPid(file);

  if (other !== undefined && other !== process.pid && isExtprov(other)) {
    throw new ListenError(
      `extprov already runs as pid ${other} (pid file ${file})`,
      "stop it first, or give this one another --pid-file",
    );
  }
}

/** Writes this process's pid, checking again that no other extprov holds the file. */
export function writePidFile(path: string): void {
  const file = resolve(path);
  checkPidFile(file);

  // A new name, then rename: a reader sees the old pid or the new one, never half a file.
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}`);
  try {
    writeFileSync(temporary, `${process.pid}\n`, { mode: 0o644 });
    renameSync(temporary, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    removeQuietly(temporary);
    throw new ListenError(
      `cannot write the pid file ${file} (${code})`,
      "create its folder, or start extprov as a user that may write there",
    );
  }

  log.info("wrote pid file", { file, pid: process.pid });
}

/** Removes the pid file if it still names this process. */
export function removePidFile(path: string): void {
  const file = resolve(path);
  if (readPid(file) !== process.pid) return;

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
      `the pid file ${file} holds no process id`,
      "restart extprov to write it again",
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

function readPid(file: string): number | undefined {
  try {
    return parsePid(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
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
