/**
 * Makes the socket path ready to bind without ever deleting what a user owns: only a
 * stale socket, one no program holds any more, is removed. `check` asks the same
 * questions without changing anything.
 */
import {
  accessSync,
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
  type Stats,
} from "node:fs";
import { basename, dirname } from "node:path";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import { isPrivateNameOf } from "./private-name.ts";
import { rootOnlyTrustProblem, trustProblem, writableByOthers } from "../system/path-trust.ts";

/** Who may own the folders on the way to the socket, and who owns one extprov creates. */
export interface SocketFolderOwners {
  trusted: number[];
  /** The service user: it removes the socket when it stops, after root has been dropped. */
  creator: { uid: number; gid: number };
}

/**
 * The socket folder, held open once checked: every later step goes through it (`inFolder`),
 * so nothing done to the path or the folders on it afterwards can turn them elsewhere.
 */
export interface SocketFolder {
  fd: number;
  path: string;
}

/** `name` in the held folder, as a path the kernel resolves through its descriptor. */
export function inFolder(folder: SocketFolder, name: string): string {
  return `/proc/self/fd/${folder.fd}/${name}`;
}

/**
 * Checks the parent folder (creating it if missing), holds it open, and clears a stale
 * socket at `path`. The folder stays open for the life of the process.
 */
export async function prepareSocketPath(
  path: string,
  owners: SocketFolderOwners,
): Promise<SocketFolder> {
  const folder = holdSocketFolder(dirname(path), owners);

  const here = inFolder(folder, basename(path));
  const existing = checkWhatIsThere(path, here);
  if (existing) await removeIfStale(path, existing, here);
  return folder;
}

function holdSocketFolder(path: string, owners: SocketFolderOwners): SocketFolder {
  const checked = prepareParent(path, owners);

  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(`cannot open the socket folder ${path} (${code})`, fileSystemHint(code));
  }

  const held = fstatSync(fd);
  if (held.ino !== checked.ino || held.dev !== checked.dev) {
    closeSync(fd);
    throw new ListenError(
      `the socket folder ${path} changed while extprov checked it`,
      "start extprov again once nothing else changes it",
    );
  }
  return { fd, path };
}

/**
 * What prepareSocketPath and binding refuse, found without creating or removing anything,
 * for `check`: the folder as serve would find it, or one this user could not create or
 * write in (binding makes a file there), and anything at the path but a socket that is
 * live or stale. A live one passes: it may be this extprov's own.
 */
export async function checkSocketPath(path: string, trustedOwners: number[]): Promise<void> {
  // In serve's order, so that both name the same first problem.
  const folder = dirname(path);
  checkWayToSocketFolder(folder);
  const existing = folderStats(folder);
  if (!existing) return checkCreatable(folder);
  checkParent(folder, existing, trustedOwners);

  if (checkWhatIsThere(path)) {
    const answer = await probeSocket(path);
    // A live one may be this extprov's own: nothing more to ask of the path.
    if (answer === "live") return;
    if (answer !== "stale") refuseHeld(path, answer);

    const code = removeProblem(folder, existing, path);
    if (code !== undefined) throw cannotRemoveStale(path, code);
  }

  // Binding makes a file in the folder; bind.ts says so in these words when it cannot.
  const code = writeProblem(folder);
  if (code !== undefined) {
    throw new ListenError(`cannot listen on ${path} (${code})`, fileSystemHint(code));
  }
}

/**
 * Why this user could not unlink `path` from `folder`, or undefined: the folder must take
 * changes, and a sticky one (mode 1xxx) lets only root and the owners of the file or the
 * folder remove it.
 */
function removeProblem(folder: string, stats: Stats, path: string): string | undefined {
  const code = writeProblem(folder);
  if (code !== undefined) return code;

  const uid = process.geteuid!();
  const sticky = (stats.mode & 0o1000) !== 0;
  if (sticky && uid !== 0 && stats.uid !== uid && lstatSync(path).uid !== uid) return "EPERM";
  return undefined;
}

/** serve would create the folder: its deepest existing parent must take a new folder. */
function checkCreatable(folder: string): void {
  refuseToCreateBelowOthers(folder);
  let parent = dirname(folder);
  while (parent !== "/" && !statOrUndefined(parent)) {
    // mkdir cannot go through a link to nothing: serve fails there with ENOENT.
    if (lstatOrUndefined(parent)?.isSymbolicLink()) {
      throw new ListenError(
        `cannot create the socket folder ${folder} (ENOENT)`,
        fileSystemHint("ENOENT"),
      );
    }
    parent = dirname(parent);
  }

  const code = writeProblem(parent);
  if (code === undefined) return;
  throw new ListenError(
    `cannot create the socket folder ${folder} (${code})`,
    fileSystemHint(code),
  );
}

/** Why this user may not add a file to `folder` (EACCES, EROFS), or undefined. */
function writeProblem(folder: string): string | undefined {
  try {
    accessSync(folder, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? "error";
  }
}

/** Throws for anything at `path` but a socket; the socket's stats when one is there. */
function checkWhatIsThere(path: string, actual = path): Stats | undefined {
  const existing = lstatOrUndefined(actual);
  if (!existing) return undefined;

  if (existing.isSymbolicLink()) {
    throw new ListenError(
      `${path} is a symbolic link`,
      "extprov never follows or deletes it; remove it yourself if it is not needed",
    );
  }

  if (existing.isDirectory()) {
    throw new ListenError(
      `${path} is a directory`,
      "a container runtime creates one when it bind-mounts a socket path that did not exist yet; remove the empty folder and mount the parent folder instead",
    );
  }

  if (!existing.isSocket()) {
    throw new ListenError(
      `${path} exists and is not a socket`,
      "extprov never deletes it; move it away or choose another listen.endpoint",
    );
  }

  return existing;
}

/** The socket folder, made if missing and checked: its stats, as checked. */
function prepareParent(folder: string, owners: SocketFolderOwners): Stats {
  checkWayToSocketFolder(folder);
  const existing = folderStats(folder) ?? createSocketFolder(folder, owners.creator);

  checkParent(folder, existing, owners.trusted);
  return existing;
}

/**
 * 0755: iotedged (another user) must reach the socket inside; only the owner may add
 * files. Owned by the service user, who must remove the socket at the stop. Given away
 * through a descriptor opened without following links: whoever may write in the parent
 * could otherwise put a link in its place and have root give another folder away.
 */
function createSocketFolder(folder: string, { uid, gid }: { uid: number; gid: number }): Stats {
  refuseToCreateBelowOthers(folder);

  let fd: number;
  try {
    mkdirSync(folder, { recursive: true, mode: 0o755 });
    fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    throw cannotCreate(folder, (error as NodeJS.ErrnoException).code);
  }

  try {
    if (fstatSync(fd).uid !== process.geteuid!()) throw cannotCreate(folder, "replaced");
    if (process.geteuid!() === 0) fchownSync(fd, uid, gid);
    log.info("created socket folder", { path: folder, mode: "0755", uid, gid });
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * mkdir follows links in the folders it creates on the way: below a folder other users
 * may write (a sticky one such as /tmp), they could put a link where a level is to be
 * made, and the service user could later swap the folder it was given. Nothing is made
 * there; the user makes the folders.
 */
function refuseToCreateBelowOthers(folder: string): void {
  const deepest = deepestExistingFolder(folder);
  const stats = lstatOrUndefined(deepest);
  if (stats && writableByOthers(stats, [0, process.geteuid!()])) {
    throw new ListenError(
      `extprov does not create ${folder} below ${deepest}, which other users may write`,
      `create the folders down to ${dirname(folder)} yourself, or put the socket elsewhere`,
    );
  }
}

function cannotCreate(folder: string, code: string | undefined): ListenError {
  if (code === "ELOOP" || code === "replaced") {
    return new ListenError(
      `the socket folder ${folder} was replaced by another user's link or folder while extprov created it`,
      "remove what is there, and let only root or the service user write in its parent",
    );
  }
  return new ListenError(
    `cannot create the socket folder ${folder} (${code})`,
    fileSystemHint(code),
  );
}

/**
 * The folders above the socket folder, looked at before anything is made or removed:
 * extprov makes, links, gives away and unlinks in the socket folder by name, so whoever
 * could change a folder or link above it could turn those at files elsewhere. Only root
 * (or, without root, the user extprov runs as) may; the socket folder itself may be the
 * service user's.
 */
function checkWayToSocketFolder(folder: string): void {
  const euid = process.geteuid!();
  // A link to nothing is left to folderStats, which says so.
  const exists = statOrUndefined(folder) !== undefined;

  let problem;
  try {
    // Every folder and link on the way, through a socket folder that is a link too, up to
    // the folder it finally leads to, which may be the service user's.
    problem = rootOnlyTrustProblem({
      path: exists ? folder : deepestExistingFolder(dirname(folder)),
      risk: "turn the socket path to other files",
      move: "put the socket folder in one only root may change, such as /var/run",
      excludeLast: exists,
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(
      `the folders above ${folder} changed while extprov checked them (${code})`,
      "start extprov again once nothing else changes them",
    );
  }
  if (problem) throw new ListenError(`above the socket folder, ${problem[0]}`, problem[1]);

  // In a folder others may write (a sticky one too), the socket folder's owner may swap it
  // for a link at any moment: there only root's (or extprov's own user's) will do. Asked of
  // the folder as written, and of the one a link finally leads to.
  for (const candidate of new Set([folder, realpathOrUndefined(folder) ?? folder])) {
    const entry = lstatOrUndefined(candidate);
    const parent = lstatOrUndefined(dirname(candidate));
    if (entry && parent && ![0, euid].includes(entry.uid) && writableByOthers(parent, [0, euid])) {
      throw new ListenError(
        `the socket folder ${candidate} is owned by uid ${entry.uid} in ${dirname(candidate)}, which other users may write: it could be swapped for a link`,
        "give the socket folder to root, or put it in a folder only root may write, such as /var/run",
      );
    }
  }
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** `folder` if it exists (as a folder or a link), else its deepest existing parent. */
function deepestExistingFolder(folder: string): string {
  let candidate = folder;
  while (candidate !== "/" && !lstatOrUndefined(candidate)) candidate = dirname(candidate);
  return candidate;
}

function checkParent(folder: string, existing: Stats, trustedOwners: number[]): void {
  if (!existing.isDirectory()) {
    throw new ListenError(`${folder} is not a folder`, "choose a socket path inside a folder");
  }

  if ((existing.mode & 0o002) !== 0) {
    throw new ListenError(
      `${folder} is writable by every user, who could replace the socket`,
      "put the socket in a folder only root or the service user can write, e.g. /var/run/external",
    );
  }

  // Sticky or not: a socket absent between two starts can be put there by anyone who may write.
  if (writableByOthers(existing, trustedOwners)) {
    throw new ListenError(
      `the socket folder ${folder} is writable by a group other users belong to, who could put another server's socket there`,
      "chmod g-w the folder, or give it to the service user's own group",
    );
  }

  // Who could rename the folder, or one above it, could put another server in its place.
  let problem;
  try {
    problem = trustProblem({
      path: folder,
      trustedOwners,
      risk: "put another server's socket in this one's place",
      move: "put the socket in a folder only root or the service user can change, e.g. /var/run/external",
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ListenError(
      `the socket folder ${folder} changed while extprov checked it (${code})`,
      "start extprov again once nothing else changes the folder",
    );
  }
  if (problem) throw new ListenError(`the socket folder ${problem[0]}`, problem[1]);
}

/** What to do when the file system will not take the socket or its folder. */
export function fileSystemHint(code: string | undefined): string {
  if (code === "EROFS")
    return "the file system is read-only; put the socket on a writable tmpfs such as /run";
  if (code === "ENOSPC")
    return "the file system is full (no free blocks or inodes); free some, or put the socket on /run";
  return "check that the folder is writable by this user";
}

/** `here` is `path` as reached through the held socket folder. */
async function removeIfStale(path: string, judged: Stats, here: string): Promise<void> {
  const answer = await probeHeldSocket(path, here);
  if (answer !== "stale") refuseHeld(path, answer);

  removeStaleSocket(path, judged, here);
}

/** Linux's O_PATH: a descriptor that names a file without opening it (asm-generic value). */
const O_PATH = 0o10000000;

/**
 * Connects to the very socket file at `here`, never through a link put there meanwhile:
 * root would otherwise connect wherever the socket folder's owner pointed it.
 */
async function probeHeldSocket(path: string, here: string) {
  let fd: number;
  try {
    fd = openSync(here, O_PATH | constants.O_NOFOLLOW);
  } catch {
    return probeSocket(path, here);
  }

  try {
    if (!fstatSync(fd).isSocket()) {
      throw new ListenError(
        `another file took the place of the stale socket at ${path} while extprov started`,
        "another program may be starting on the same path; extprov leaves it alone",
      );
    }
    return await probeSocket(path, `/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/** Why a socket already at `path` is not replaced. */
function refuseHeld(path: string, answer: "live" | "bound" | "denied"): never {
  if (answer === "live") {
    throw new ListenError(
      `another server is listening on ${path}`,
      "stop it first, or choose another listen.endpoint",
    );
  }

  if (answer === "bound") {
    throw new ListenError(
      `${path} is a socket that a running program still holds, though it takes no connection now (a full backlog, a stopped server, or a datagram socket)`,
      "stop that program first, or choose another listen.endpoint",
    );
  }

  throw new ListenError(
    `${path} exists and this user cannot connect to it to tell whether it is in use`,
    "stop the other server, or remove the socket as root",
  );
}

/**
 * Unlinks the socket judged stale, unless another file has taken its place meanwhile:
 * another extprov starting at the same moment may have removed it and put its own there.
 */
function removeStaleSocket(path: string, judged: Stats, here: string): void {
  const now = lstatOrUndefined(here);
  if (!now) return;

  // The inode number alone could be the same: a file system may give the stale socket's
  // number, freed by the other start, to that start's new socket.
  const same = now.ino === judged.ino && now.dev === judged.dev && now.ctimeMs === judged.ctimeMs;
  if (!same) {
    throw new ListenError(
      `another socket took the place of the stale one at ${path} while extprov started`,
      "another extprov may be starting on the same path; extprov leaves it alone",
    );
  }

  try {
    unlinkSync(here);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    throw cannotRemoveStale(path, code);
  }
  log.info("removed stale socket", { socket: path });
}

function cannotRemoveStale(path: string, code: string | undefined): ListenError {
  return new ListenError(
    `cannot remove the stale socket ${path} (${code})`,
    code === "EROFS"
      ? fileSystemHint(code)
      : "remove it as its owner or root, or start extprov as root and let runAs drop privileges after binding",
  );
}

/**
 * Whether a server still answers on the socket. Bun.connect rather than node:net, which
 * every start would load for this one look (about 0.5 MiB). Bun reports a full backlog and
 * a datagram socket as a refused connection too, so a refusal is taken as stale only when
 * no socket in this system is still bound to the path.
 */
async function probeSocket(
  path: string,
  connectTo = path,
): Promise<"live" | "bound" | "stale" | "denied"> {
  try {
    const client = await Bun.connect({ unix: connectTo, socket: { data() {} } });
    client.end();
    return "live";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") return "denied";
    return stillBound(path) ? "bound" : "stale";
  }
}

/**
 * Whether a socket of this system is still bound to the file at `path`, however it was
 * named when bound: by its name, or by the private name an extprov binds by before it
 * links the socket at `path` (private-name.ts); through a symbolic link to its folder or
 * another mount of it (the same folder on disk, by device and inode), or by a path whose
 * folder /proc does not say (a relative one, or one through the binder's own
 * /proc/self/fd), so that the name alone counts. Wrongly held only costs a refused start;
 * wrongly stale would delete another program's socket.
 */
function stillBound(path: string): boolean {
  const folder = folderIdentity(dirname(path));
  const name = basename(path);

  for (const bound of boundSocketPaths()) {
    const boundName = basename(bound);
    if (boundName !== name && !isPrivateNameOf(boundName, name)) continue;

    if (!bound.startsWith("/") || bound.startsWith("/proc/self/")) return true;
    if (bound === path) return true;
    if (folder !== undefined && folderIdentity(dirname(bound)) === folder) return true;
  }
  return false;
}

/** A folder as the file system knows it, whatever path leads there; undefined if gone. */
function folderIdentity(folder: string): string | undefined {
  try {
    const { dev, ino } = statSync(folder);
    return `${dev}:${ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The paths that sockets of this network namespace are bound to, as they were given to
 * bind(), from /proc/net/unix: a socket whose server died is gone from it, though its file
 * stays. Abstract names (`@...`) are left out. Empty without /proc, where a refused
 * connection has to be taken as stale.
 */
function boundSocketPaths(): Set<string> {
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "utf8");
  } catch {
    return new Set();
  }

  // "Num RefCount Protocol Flags Type St Inode Path": the path, if any, is the rest of the
  // line after the seventh field and one space, taken as it is (it may hold spaces).
  const paths = table
    .split("\n")
    .slice(1)
    .map((line) => /^\s*(?:\S+\s+){6}\S+ (.*)$/.exec(line)?.[1] ?? "")
    .filter((path) => path !== "" && !path.startsWith("@"));
  return new Set(paths);
}

/** The socket folder as stat sees it, or undefined when missing; a link to nothing is refused. */
function folderStats(folder: string): Stats | undefined {
  const existing = statOrUndefined(folder);
  if (existing || !lstatOrUndefined(folder)?.isSymbolicLink()) return existing;

  throw new ListenError(
    `${folder} is a symbolic link to a folder that does not exist`,
    "create the folder it points to, or choose another listen.endpoint",
  );
}

function lstatOrUndefined(path: string) {
  return orMissing(path, () => lstatSync(path));
}

function statOrUndefined(path: string) {
  return orMissing(path, () => statSync(path));
}

/** Missing is an answer; anything else (no permission to look) stops the start. */
function orMissing<T>(path: string, look: () => T): T | undefined {
  try {
    return look();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new ListenError(
      `cannot inspect ${path} (${code})`,
      code === "ENOTDIR"
        ? "a part of the path is a file, not a folder; correct listen.endpoint"
        : "run extprov as a user that can reach the socket folder",
    );
  }
}
