/**
 * For the install.sh tests: a release folder packed by build/package-release.ts around a
 * stand-in executable, a device root file system in a temporary folder, install.sh run
 * under dash or BusyBox ash, and a listing of a root (type, mode, owner, content hash)
 * to tell exactly what a run changed.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { packArchive } from "../../build/package-release.ts";
import { tempDir } from "../helpers/temp.ts";

export const projectRoot = join(import.meta.dir, "..", "..");
export const installScript = join(projectRoot, "install.sh");

/**
 * Why the tests that run install.sh are skipped here, or undefined: it changes owners and
 * modes as it installs, so it runs only as root (or under fakeroot).
 */
export const installSkipReason =
  process.geteuid?.() === 0 ? undefined : "install.sh needs root; run the tests as root";

if (installSkipReason) console.warn(`install.sh tests skipped: ${installSkipReason}`);

/** The Debian packages the install tests drive, as .ci/run installs them. */
const tools = {
  dash: { path: "/usr/bin/dash", debian: "dash" },
  busybox: { path: "/usr/bin/busybox", debian: "busybox" },
  shellcheck: { path: "/usr/bin/shellcheck", debian: "shellcheck" },
  "systemd-analyze": { path: "/usr/bin/systemd-analyze", debian: "systemd" },
  logrotate: { path: "/usr/sbin/logrotate", debian: "logrotate" },
} as const;

/** Fails the calling test when a tool is missing, rather than letting it pass unchecked. */
export function requireTool(name: keyof typeof tools): string {
  const tool = tools[name];
  if (!existsSync(tool.path)) {
    throw new Error(
      `${tool.path} is missing: .ci/run installs it (apt-get install ${tool.debian})`,
    );
  }
  return tool.path;
}

export function hasTool(name: keyof typeof tools): boolean {
  return existsSync(tools[name].path);
}

/**
 * A stand-in for the compiled extprov: `--version` like the real one, `check` passes only
 * once the key file exists (as on a device), `serve` waits for SIGTERM.
 */
function fakeExecutable(version: string, target: string): string {
  return `#!/bin/sh
case "\${1:-}" in
--version) echo "extprov ${version} (commit fake, bun 1.4.5, ${target})" ;;
check)
    if [ -f /etc/extprov/secrets/device.key ]; then echo "configuration is valid"; exit 0; fi
    echo "error check failed: /etc/extprov/secrets/device.key: no such file" >&2
    exit 3
    ;;
serve) trap 'kill "$!"; exit 0' TERM; sleep 1000 & wait ;;
*) exit 2 ;;
esac
`;
}

export interface ReleaseOptions {
  version?: string;
  /** Executables in bin/: `linux-x64` and so on. */
  targets?: string[];
}

/** Packs a release archive as `bun run build` would, with stand-in executables, and unpacks it. */
export async function makeRelease(options: ReleaseOptions = {}): Promise<string> {
  const version = options.version ?? "0.1.0";
  const targets = options.targets ?? [
    "linux-x64",
    "linux-x64-baseline",
    "linux-x64-musl",
    "linux-arm64",
  ];
  const work = tempDir("extprov-release-");
  const executables = targets.map((target) => {
    const file = join(work, `extprov-${target}`);
    writeFileSync(file, fakeExecutable(version, target), { mode: 0o755 });
    return file;
  });

  const packed = await packArchive({
    projectRoot,
    outDir: work,
    version,
    archive: "linux-test",
    executables,
    mtime: 1_700_000_000,
    strict: true,
  });

  const tar = Bun.spawnSync(["tar", "-xzf", packed.file, "-C", work]);
  if (tar.exitCode !== 0) throw new Error(`tar failed: ${tar.stderr.toString()}`);
  return join(work, `extprov-${version}-linux-test`);
}

export interface RootOptions {
  /** Marks the image as booting systemd (lib/systemd/systemd). */
  systemd?: boolean;
  libc?: "glibc" | "musl";
  /** Adds etc/shadow and etc/gshadow, root:42 0640 as Debian has them. */
  shadow?: boolean;
  /** SysV runlevel folders (rc0.d..rc6.d), BusyBox/Buildroot's etc/init.d/rcS, or OpenRC. */
  rc?: "sysv" | "busybox" | "openrc";
}

/** A device root file system: account files, a C library loader, optionally systemd. */
export function makeRoot(options: RootOptions = {}): string {
  const root = tempDir("extprov-root-");
  chmodSync(root, 0o755);
  write(
    root,
    "etc/passwd",
    "root:x:0:0:root:/root:/bin/sh\nsshd:x:999:65534::/run/sshd:/usr/sbin/nologin\n",
  );
  write(root, "etc/group", "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n");
  write(root, "usr/sbin/nologin", "#!/bin/sh\nexit 1\n", 0o755);

  if (options.shadow) {
    write(root, "etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 42);
    write(root, "etc/gshadow", "root:*::\n", 0o640, 42);
  }

  if (options.libc === "musl") write(root, "lib/ld-musl-x86_64.so.1", "");
  else write(root, "lib64/ld-linux-x86-64.so.2", "");

  if (options.systemd) {
    write(root, "lib/systemd/systemd", "", 0o755);
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  }

  if (options.rc === "sysv") {
    for (const level of ["0", "1", "2", "3", "4", "5", "6", "S"]) {
      mkdirSync(join(root, `etc/rc${level}.d`), { recursive: true });
    }
  }
  if (options.rc === "busybox") write(root, "etc/init.d/rcS", "#!/bin/sh\n", 0o755);
  if (options.rc === "openrc") {
    write(root, "sbin/openrc-run", "#!/bin/sh\n", 0o755);
    mkdirSync(join(root, "etc/runlevels/default"), { recursive: true });
  }
  return root;
}

/** Writes `text` at `path` inside `root`, with its folders. */
export function write(root: string, path: string, text: string, mode = 0o644, gid = 0): void {
  const file = join(root, path);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, mode);
  Bun.spawnSync(["chown", `0:${gid}`, file]);
}

export function read(root: string, path: string): string {
  return readFileSync(join(root, path), "utf8");
}

export type Shell = "dash" | "busybox ash";

export const shells: Shell[] = ["dash", "busybox ash"];

/**
 * Commands install.sh must never run on an image: each stand-in records its call and
 * fails, so a mistake shows up in `guardCalls` instead of touching this machine.
 */
const guarded = [
  "systemctl",
  "useradd",
  "groupadd",
  "adduser",
  "addgroup",
  "update-rc.d",
  "chkconfig",
];

// Made once per test file: temporary folders are removed after each file's tests.
let guardFolder: string | undefined;
let busyboxFolder: string | undefined;

function guards(): string {
  if (guardFolder && existsSync(guardFolder)) return guardFolder;
  guardFolder = tempDir("extprov-guards-");
  chmodSync(guardFolder, 0o755);
  for (const name of guarded) {
    const stub = `#!/bin/sh\necho "${name} $*" >>"${guardFolder}/calls"\nexit 1\n`;
    writeFileSync(join(guardFolder, name), stub, { mode: 0o755 });
  }
  return guardFolder;
}

/** The commands install.sh tried to run that an image install must not. */
export function guardCalls(): string {
  const log = join(guards(), "calls");
  return existsSync(log) ? readFileSync(log, "utf8") : "";
}

/** A folder with one link per BusyBox applet, so that ash runs with BusyBox's tools only. */
function busyboxTools(): string {
  if (busyboxFolder && existsSync(busyboxFolder)) return busyboxFolder;
  const busybox = requireTool("busybox");
  busyboxFolder = tempDir("extprov-busybox-");
  chmodSync(busyboxFolder, 0o755);
  for (const applet of Bun.spawnSync([busybox, "--list"]).stdout.toString().split("\n")) {
    if (applet && !guarded.includes(applet)) symlinkSync(busybox, join(busyboxFolder, applet));
  }
  return busyboxFolder;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the release's install.sh under `shell` with `args`, which must include --root, from
 * the folder `cwd` (this process's by default).
 */
export function runInstall(
  shell: Shell,
  release: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): RunResult {
  if (
    !args.some((arg) => arg === "--root" || arg.startsWith("--root=")) &&
    !args.includes("--help")
  ) {
    throw new Error("install.sh tests always pass --root: they never touch this machine");
  }

  const script = join(release, "install.sh");
  const command =
    shell === "dash" ? [requireTool("dash"), script] : [requireTool("busybox"), "ash", script];
  const tools = shell === "dash" ? "/usr/sbin:/usr/bin:/sbin:/bin" : busyboxTools();
  const child = Bun.spawnSync([...command, ...args], {
    env: { PATH: `${guards()}:${tools}`, LANG: "C", ...env },
    stdin: "ignore",
    cwd,
  });

  const calls = guardCalls();
  if (calls) {
    rmSync(join(guards(), "calls"));
    throw new Error(`install.sh --root ran commands meant for a running system:\n${calls}`);
  }

  return {
    code: child.exitCode ?? -1,
    stdout: child.stdout.toString(),
    stderr: child.stderr.toString(),
  };
}

export interface Entry {
  path: string;
  type: "file" | "dir" | "link" | "other";
  mode: string;
  owner: string;
  /** sha256 of a file, target of a link. */
  content?: string;
}

/** Every entry under `root` with type, mode, numeric owner and content hash. */
export function listTree(root: string): Entry[] {
  const entries: Entry[] = [];
  const visit = (path: string) => {
    const stats = lstatSync(path);
    const entry: Entry = {
      path: relative(root, path) || ".",
      type: stats.isFile()
        ? "file"
        : stats.isDirectory()
          ? "dir"
          : stats.isSymbolicLink()
            ? "link"
            : "other",
      mode: (stats.mode & 0o7777).toString(8).padStart(4, "0"),
      owner: `${stats.uid}:${stats.gid}`,
    };
    if (entry.type === "file")
      entry.content = createHash("sha256").update(readFileSync(path)).digest("hex");
    if (entry.type === "link") entry.content = readlinkSync(path);
    entries.push(entry);
    if (entry.type === "dir") for (const name of readdirSync(path).sort()) visit(join(path, name));
  };

  visit(root);
  return entries;
}

/** One entry of a listing, or undefined. */
export function entryAt(tree: Entry[], path: string): Entry | undefined {
  return tree.find((entry) => entry.path === path);
}

/** The uid and gid an account file gives `name`. */
export function accountIds(
  root: string,
  file: "passwd" | "group",
  name: string,
): string[] | undefined {
  const line = read(root, `etc/${file}`)
    .split("\n")
    .find((entry) => entry.startsWith(`${name}:`));
  return line?.split(":");
}
