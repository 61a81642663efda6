/**
 * Static checks of what install.sh installs: shellcheck on the two shell scripts, both
 * parsed by dash and BusyBox ash, the systemd unit checked by systemd-analyze (verify in
 * an image made by install.sh, and the offline security review), and the logrotate file
 * run by logrotate itself.
 */
import { describe, expect, test } from "bun:test";
import {
  closeSync,
  copyFileSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import {
  hasTool,
  makeRelease,
  makeRoot,
  projectRoot,
  read,
  requireTool,
  runInstall,
  write,
  installSkipReason,
} from "./helpers.ts";

const scripts = ["install.sh", "build/init/extprov.init", "build/init/extprov.openrc"];
const unit = join(projectRoot, "build/init/extprov.service");

/** Without systemd-analyze these tests are skipped, and their names say so. */
const analyze = hasTool("systemd-analyze");
const skipNote = analyze
  ? ""
  : " (skipped: no systemd-analyze; .ci/run installs it: apt-get install systemd)";

/** The exposure systemd-analyze security gives the unit today; a change must not raise it. */
const recordedExposure = 0.5;

function run(command: string[]): { code: number; output: string } {
  const child = Bun.spawnSync(command, {
    stdin: "ignore",
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
  });
  return { code: child.exitCode ?? -1, output: child.stdout.toString() + child.stderr.toString() };
}

describe("the shell scripts", () => {
  test.each(scripts)("%s is clean under shellcheck -s sh", (script) => {
    const shellcheck = requireTool("shellcheck");

    const result = run([shellcheck, "-s", "sh", join(projectRoot, script)]);

    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });

  test.each(scripts)("%s parses under dash and BusyBox ash", (script) => {
    const dash = run([requireTool("dash"), "-n", join(projectRoot, script)]);
    const ash = run([requireTool("busybox"), "ash", "-n", join(projectRoot, script)]);

    expect(dash).toEqual({ code: 0, output: "" });
    expect(ash).toEqual({ code: 0, output: "" });
  });

  test.each(scripts)("%s keeps lines within 100 columns", (script) => {
    const long = read(projectRoot, script)
      .split("\n")
      .filter((line) => line.replaceAll("\t", "    ").length > 100);

    expect(long).toEqual([]);
  });
});

describe("the systemd unit", () => {
  test("runs extprov as its own user with the socket folder and group iotedged needs", () => {
    const text = read(projectRoot, "build/init/extprov.service");

    for (const line of [
      "User=extprov",
      "Group=extprov",
      "SupplementaryGroups=iotedge",
      "RuntimeDirectory=external",
      "RuntimeDirectoryMode=0755",
      "ExecStart=/usr/bin/extprov serve --config /etc/extprov/config.yaml",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "Before=iotedge.service",
      "WantedBy=multi-user.target",
      "Restart=on-failure",
      "Type=notify",
      "NotifyAccess=main",
    ]) {
      expect(text.split("\n")).toContain(line);
    }
    // The JIT needs W+X memory; PrivateUsers would unmap the iotedge group.
    expect(text).not.toMatch(/^MemoryDenyWriteExecute=/m);
    expect(text).not.toMatch(/^PrivateUsers=/m);
  });

  // install.sh makes the image: as root only.
  test.skipIf(!analyze || installSkipReason !== undefined)(
    `systemd-analyze verify accepts it in an image made by install.sh${skipNote}`,
    async () => {
      const root = makeRoot({ systemd: true });
      write(root, "bin/kill", "#!/bin/sh\n", 0o755);
      runInstall("dash", await makeRelease(), ["--root", root]);
      // verify resolves the unit's dependencies (sysinit.target, ...) inside the root.
      const units = "/lib/systemd/system";
      for (const name of readdirSync(units).filter((name) => name.endsWith(".target"))) {
        copyFileSync(join(units, name), join(root, units, name));
      }

      const result = run([
        "systemd-analyze",
        "verify",
        `--root=${root}`,
        "/lib/systemd/system/extprov.service",
      ]);

      expect(result.output).toBe("");
      expect(result.code).toBe(0);
    },
  );

  test.skipIf(!analyze)(
    `systemd-analyze security rates it ${recordedExposure} or lower${skipNote}`,
    () => {
      const result = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit]);
      const exposure = Number(
        /Overall exposure level for extprov\.service: ([\d.]+)/.exec(result.output)?.[1],
      );

      expect(result.code).toBe(0);
      expect(exposure).toBeLessThanOrEqual(recordedExposure);
    },
  );
});

describe("the logrotate file", () => {
  test("rotates the log in place: the init script's appending writer goes on in the emptied file", () => {
    const logrotate = requireTool("logrotate");
    const folder = tempDir();
    const log = join(folder, "extprov.log");
    const shipped = read(projectRoot, "build/init/extprov.logrotate");
    expect(shipped).toContain("/var/log/extprov.log {");
    write(folder, "logrotate.conf", shipped.replace("/var/log/extprov.log {", `${log} {`));

    // Opened as the init script's `>>` opens it, and kept open across the rotation.
    const writer = openSync(log, "a", 0o640);
    writeSync(writer, "before the rotation\n");
    const inode = statSync(log).ino;
    const config = join(folder, "logrotate.conf");
    const result = run([logrotate, "--force", "--state", join(folder, "state"), config]);
    writeSync(writer, "after the rotation\n");
    closeSync(writer);

    expect(result).toEqual({ code: 0, output: "" });
    expect(readFileSync(`${log}.1`, "utf8")).toBe("before the rotation\n");
    expect(readFileSync(log, "utf8")).toBe("after the rotation\n");
    expect(statSync(log).ino).toBe(inode);
  });
});
