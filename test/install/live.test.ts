/**
 * install.sh on a running system, which the tests must never touch: each test builds a
 * tiny system in a temporary folder (BusyBox and its C library, stand-ins for systemctl,
 * useradd and friends that record their calls) and runs install.sh inside it with chroot,
 * where that folder is `/`. The init script is the real one, started with BusyBox's
 * start-stop-daemon; the extprov it starts is the stand-in from the fake release.
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  cpSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
} from "node:fs";
import { basename, join } from "node:path";
import { entryAt, listTree, makeRelease, read, requireTool, write } from "./helpers.ts";
import { tempDir } from "../helpers/temp.ts";

const isRoot = process.getuid!() === 0;
const skipNote = isRoot ? "" : " (skipped: chroot needs root; CI runs as root)";

/** Stand-ins that record each call in /var/log/calls inside the chroot. */
const stubs: Record<string, string> = {
  "usr/bin/systemctl": `#!/bin/sh
echo "systemctl $*" >>/var/log/calls
state=/run/fake-systemd
mkdir -p "$state"
case "$1" in
is-active) [ -f "$state/active" ] ;;
is-enabled) [ -f "$state/enabled" ] ;;
enable) touch "$state/enabled" ;;
start | restart) touch "$state/active" ;;
disable) rm -f "$state/enabled" "$state/active" ;;
list-unit-files) [ -f /lib/systemd/system/extprov.service ] && echo "extprov.service enabled" ;;
esac
`,
  "usr/sbin/groupadd": `#!/bin/sh
echo "groupadd $*" >>/var/log/calls
for name; do :; done
echo "$name:x:$((900 + $(wc -l </etc/group))):" >>/etc/group
`,
  "usr/sbin/useradd": `#!/bin/sh
echo "useradd $*" >>/var/log/calls
for name; do :; done
gid=$(awk -F: '$1 == "extprov" { print $3 }' /etc/group)
echo "$name:x:$((800 + $(wc -l </etc/passwd))):$gid::/nonexistent:/sbin/nologin" >>/etc/passwd
`,
};

/** BusyBox's adduser and addgroup, as a BusyBox system without shadow's tools has them. */
const busyboxAccountStubs: Record<string, string> = {
  "usr/sbin/addgroup": `#!/bin/sh
[ "$1" = --help ] && { echo "BusyBox v1.35.0 multi-call binary."; exit 0; }
${stubs["usr/sbin/groupadd"]!.split("\n").slice(1).join("\n").replace("groupadd", "addgroup")}`,
  "usr/sbin/adduser": `#!/bin/sh
[ "$1" = --help ] && { echo "BusyBox v1.35.0 multi-call binary."; exit 0; }
${stubs["usr/sbin/useradd"]!.split("\n").slice(1).join("\n").replace("useradd", "adduser")}`,
};

interface LiveOptions {
  init: "systemd" | "busybox";
  updateRcD?: boolean;
}

/** A root file system just big enough to run install.sh and the init script. */
function makeSystem(options: LiveOptions): string {
  const root = tempDir("extprov-live-");
  Bun.spawnSync(["chmod", "0755", root]);
  const busybox = requireTool("busybox");
  for (const library of sharedLibraries(busybox)) copyInto(root, library);
  copyFileSync(busybox, join(root, "bin-busybox"));
  mkdirSync(join(root, "bin"));
  Bun.spawnSync(["mv", join(root, "bin-busybox"), join(root, "bin/busybox")]);
  for (const applet of Bun.spawnSync([busybox, "--list"])
    .stdout.toString()
    .split("\n")
    .filter(Boolean)) {
    symlinkSync("busybox", join(root, "bin", applet));
  }

  write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  write(root, "etc/group", "root:x:0:\n");
  write(root, "cpuinfo", "processor\t: 0\nflags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2\n");
  for (const folder of [
    "tmp",
    "var/log",
    "var/run",
    "run",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "etc/init.d",
  ]) {
    mkdirSync(join(root, folder), { recursive: true });
  }
  symlinkSync("/bin/busybox", join(root, "sbin/nologin"));
  Bun.spawnSync(["chmod", "1777", join(root, "tmp")]);
  mkdirSync(join(root, "dev"));
  Bun.spawnSync(["mknod", "-m", "0666", join(root, "dev/null"), "c", "1", "3"]);

  const accountStubs =
    options.init === "systemd" ? stubs : { ...busyboxAccountStubs, "usr/bin/systemctl": "" };
  for (const [path, text] of Object.entries(accountStubs)) if (text) write(root, path, text, 0o755);
  if (options.init === "systemd") mkdirSync(join(root, "run/systemd/system"), { recursive: true });
  else write(root, "etc/init.d/rcS", "#!/bin/sh\n", 0o755);
  if (options.updateRcD)
    write(
      root,
      "usr/sbin/update-rc.d",
      '#!/bin/sh\necho "update-rc.d $*" >>/var/log/calls\n',
      0o755,
    );
  return root;
}

/** The libraries `ldd` names for an executable, including the loader. */
function sharedLibraries(executable: string): string[] {
  const ldd = Bun.spawnSync(["ldd", executable]).stdout.toString();
  return [...ldd.matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((match) => match[1]!);
}

function copyInto(root: string, path: string): void {
  mkdirSync(join(root, path, ".."), { recursive: true });
  copyFileSync(realpathSync(path), join(root, path));
}

/** Copies a release folder into the system and returns its path there. */
async function addRelease(root: string, version: string): Promise<string> {
  const release = await makeRelease({ version, targets: ["linux-x64"] });
  const inside = `/release-${version}`;
  cpSync(release, join(root, inside), { recursive: true });
  return inside;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command inside the system, where its folder is `/`. */
function inside(root: string, command: string[]): Run {
  const child = Bun.spawnSync(["chroot", root, ...command], {
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", EXTPROV_CPUINFO: "/cpuinfo" },
    stdin: "ignore",
  });
  return {
    code: child.exitCode ?? -1,
    stdout: child.stdout.toString(),
    stderr: child.stderr.toString(),
  };
}

function install(root: string, release: string, args: string[] = []): Run {
  return inside(root, ["/bin/sh", `${release}/install.sh`, ...args]);
}

/** The calls that change something, in order (queries such as is-active left out). */
function changingCalls(root: string): string[] {
  const log = join(root, "var/log/calls");
  const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
  return calls.filter(
    (call) => !/^systemctl (is-active|is-enabled|list-unit-files)/.test(call) && call,
  );
}

function clearCalls(root: string): void {
  write(root, "var/log/calls", "");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes started inside a test system, stopped after each test if still running. */
const started: number[] = [];

afterEach(() => {
  for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
});

function servingPid(root: string): number {
  const pid = Number(read(root, "var/run/extprov.pid").trim());
  started.push(pid);
  return pid;
}

describe("install.sh on a running systemd system (in a chroot)", () => {
  test.skipIf(!isRoot)(
    `adds the accounts with useradd, enables the unit and waits for a key${skipNote}`,
    async () => {
      const root = makeSystem({ init: "systemd" });
      const release = await addRelease(root, "0.1.0");

      const result = install(root, release);
      const tree = listTree(root);
      const gid = read(root, "etc/group")
        .split("\n")
        .find((line) => line.startsWith("extprov:"))!
        .split(":")[2];

      expect(result.code).toBe(0);
      expect(changingCalls(root)).toEqual([
        "groupadd --system extprov",
        "groupadd --system iotedge",
        "useradd --system --gid extprov --no-create-home --home-dir /nonexistent --shell /sbin/nologin --comment extprov provisioning endpoint extprov",
        "systemctl daemon-reload",
        "systemctl enable extprov.service",
      ]);
      expect(result.stderr).toContain(
        "extprov is not started: extprov check says: error check failed",
      );
      expect(entryAt(tree, "usr/bin/extprov")).toMatchObject({ mode: "0755", owner: "0:0" });
      expect(entryAt(tree, "etc/extprov")).toMatchObject({ mode: "0750", owner: `0:${gid}` });
      expect(entryAt(tree, "lib/systemd/system/extprov.service")).toMatchObject({ mode: "0644" });
      expect(result.stdout).toContain("systemctl restart extprov");
    },
  );

  test.skipIf(!isRoot)(
    `starts once the configuration checks, restarts only after an upgrade${skipNote}`,
    async () => {
      const root = makeSystem({ init: "systemd" });
      const first = await addRelease(root, "0.1.0");
      const second = await addRelease(root, "0.2.0");
      install(root, first);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);
      clearCalls(root);

      const start = install(root, first);
      const startCalls = changingCalls(root);
      clearCalls(root);
      const again = install(root, first);
      const againCalls = changingCalls(root);
      clearCalls(root);
      const upgrade = install(root, second);

      expect([start.code, again.code, upgrade.code]).toEqual([0, 0, 0]);
      expect(startCalls).toEqual(["systemctl start extprov.service"]);
      expect(againCalls).toEqual([]);
      expect(again.stderr).toContain("extprov is running and nothing changed");
      expect(changingCalls(root)).toEqual(["systemctl restart extprov.service"]);
      expect(upgrade.stderr).toContain(
        "upgrading: extprov 0.1.0 (commit fake, bun 1.4.5, linux-x64) -> extprov 0.2.0",
      );
    },
  );

  test.skipIf(!isRoot)(
    `--uninstall disables and stops it, and keeps /etc/extprov${skipNote}`,
    async () => {
      const root = makeSystem({ init: "systemd" });
      const release = await addRelease(root, "0.1.0");
      install(root, release);
      clearCalls(root);

      const result = install(root, release, ["--uninstall"]);

      expect(result.code).toBe(0);
      expect(changingCalls(root)).toEqual([
        "systemctl disable --now extprov.service",
        "systemctl daemon-reload",
      ]);
      expect(existsSync(join(root, "usr/bin/extprov"))).toBe(false);
      expect(existsSync(join(root, "lib/systemd/system/extprov.service"))).toBe(false);
      expect(existsSync(join(root, "etc/extprov/config.yaml"))).toBe(true);
    },
  );
});

describe("install.sh on a running BusyBox system (in a chroot)", () => {
  test.skipIf(!isRoot)(
    `adds accounts with BusyBox adduser and links the init script for rcS${skipNote}`,
    async () => {
      const root = makeSystem({ init: "busybox" });
      const release = await addRelease(root, "0.1.0");

      const result = install(root, release);

      expect(result.code).toBe(0);
      expect(changingCalls(root)).toEqual([
        "addgroup -S extprov",
        "addgroup -S iotedge",
        "adduser -S -D -H -h /nonexistent -s /sbin/nologin -G extprov -g extprov provisioning endpoint extprov",
      ]);
      expect(entryAt(listTree(root), "etc/init.d/S49extprov")).toMatchObject({
        type: "link",
        content: "extprov",
      });
      expect(result.stderr).toContain("extprov is not started");
      expect(existsSync(join(root, "var/run/extprov.pid"))).toBe(false);
    },
  );

  test.skipIf(!isRoot)(
    `starts extprov with the init script, restarts it on upgrade, stops it on --uninstall${skipNote}`,
    async () => {
      const root = makeSystem({ init: "busybox" });
      const first = await addRelease(root, "0.1.0");
      const second = await addRelease(root, "0.2.0");
      install(root, first);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);

      const start = install(root, first);
      const firstPid = servingPid(root);
      const status = inside(root, ["/etc/init.d/extprov", "status"]);
      const socketFolder = entryAt(listTree(root), "var/run/external");
      const upgrade = install(root, second);
      const secondPid = servingPid(root);
      const uninstall = install(root, second, ["--uninstall"]);

      expect(start.code).toBe(0);
      expect(start.stderr).toContain("+ /etc/init.d/extprov start");
      expect(status.code).toBe(0);
      expect(status.stderr).toContain(`running (pid ${firstPid})`);
      expect(socketFolder).toMatchObject({
        type: "dir",
        mode: "0755",
        owner: `${read(root, "etc/passwd").split("\n")[1]!.split(":")[2]}:0`,
      });
      expect(upgrade.stderr).toContain("+ /etc/init.d/extprov restart");
      expect(secondPid).not.toBe(firstPid);
      expect(alive(firstPid)).toBe(false);
      expect(uninstall.code).toBe(0);
      expect(uninstall.stderr).toContain("+ /etc/init.d/extprov stop");
      expect(alive(secondPid)).toBe(false);
      expect(existsSync(join(root, "var/run/extprov.pid"))).toBe(false);
      expect(existsSync(join(root, "etc/init.d/S49extprov"))).toBe(false);
    },
  );

  test.skipIf(!isRoot)(`uses update-rc.d where the system has it${skipNote}`, async () => {
    const root = makeSystem({ init: "busybox", updateRcD: true });
    const release = await addRelease(root, "0.1.0");

    install(root, release);
    const installCalls = changingCalls(root).filter((call) => call.startsWith("update-rc.d"));
    install(root, release, ["--uninstall"]);

    expect(installCalls).toEqual(["update-rc.d extprov defaults"]);
    expect(changingCalls(root).filter((call) => call.startsWith("update-rc.d"))).toEqual([
      "update-rc.d extprov defaults",
      "update-rc.d -f extprov remove",
    ]);
    expect(basename(release)).toBe("release-0.1.0");
  });
});
