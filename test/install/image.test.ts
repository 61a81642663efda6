/**
 * install.sh into device root file systems (--root) under dash and BusyBox ash (with
 * BusyBox's own tools): what it installs with which modes and owners, and that re-runs,
 * upgrades, dry runs and removals change exactly what they should.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  accountIds,
  entryAt,
  guardCalls,
  listTree,
  makeRelease,
  makeRoot,
  projectRoot,
  read,
  runInstall,
  shells,
  write,
  installSkipReason,
} from "./helpers.ts";

/** The symbolic links in a listing, as "path -> target". */
function linksIn(tree: ReturnType<typeof listTree>): string[] {
  return tree
    .filter((entry) => entry.type === "link")
    .map((entry) => `${entry.path} -> ${entry.content}`);
}

const example = readFileSync(join(projectRoot, "examples/config.yaml"), "utf8");

describe.skipIf(installSkipReason !== undefined).each(shells)(
  "install.sh under %s into an image",
  (shell) => {
    test("installs the executable, accounts, configuration and unit with their modes and owners", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true, shadow: true });

      const result = runInstall(shell, release, ["--root", root]);
      const tree = listTree(root);
      const user = accountIds(root, "passwd", "extprov")!;
      const group = accountIds(root, "group", "extprov")!;
      const iotedge = accountIds(root, "group", "iotedge")!;
      const ids = `${user[2]}:${group[2]}`;

      expect(result.stderr).not.toContain("error");
      expect(result.code).toBe(0);
      expect(user).toEqual([
        "extprov",
        "x",
        user[2]!,
        group[2]!,
        "extprov provisioning endpoint",
        "/nonexistent",
        "/usr/sbin/nologin",
      ]);
      // 999 is sshd's uid in the image, so the first id free for both is 998.
      expect([user[2], group[2], iotedge[2]]).toEqual(["998", "998", "997"]);
      expect(read(root, "etc/shadow")).toEndWith("\nextprov:!:::::::\n");
      expect(read(root, "etc/gshadow")).toEndWith("\nextprov:!::\niotedge:!::\n");
      expect(entryAt(tree, "etc/shadow")).toMatchObject({ mode: "0640", owner: "0:42" });
      expect(entryAt(tree, "usr/bin/extprov")).toMatchObject({
        type: "file",
        mode: "0755",
        owner: "0:0",
      });
      expect(read(root, "usr/bin/extprov")).toContain("linux-x64)");
      expect(entryAt(tree, "etc/extprov")).toMatchObject({
        type: "dir",
        mode: "0750",
        owner: `0:${group[2]}`,
      });
      expect(entryAt(tree, "etc/extprov/config.yaml")).toMatchObject({
        mode: "0640",
        owner: `0:${group[2]}`,
      });
      expect(read(root, "etc/extprov/config.yaml")).toBe(example);
      expect(entryAt(tree, "etc/extprov/secrets")).toMatchObject({
        type: "dir",
        mode: "0700",
        owner: ids,
      });
      expect(entryAt(tree, "lib/systemd/system/extprov.service")).toMatchObject({
        mode: "0644",
        owner: "0:0",
      });
      expect(read(root, "lib/systemd/system/extprov.service")).toBe(
        read(projectRoot, "build/init/extprov.service"),
      );
      expect(
        entryAt(tree, "etc/systemd/system/multi-user.target.wants/extprov.service"),
      ).toMatchObject({
        type: "link",
        content: "/lib/systemd/system/extprov.service",
      });
      expect(entryAt(tree, "usr/share/doc/extprov/README.md")).toMatchObject({
        mode: "0644",
        owner: "0:0",
      });
      expect(entryAt(tree, "etc/init.d/extprov")).toBeUndefined();
      expect(tree.filter((entry) => entry.path.includes(".extprov."))).toEqual([]);
      expect(guardCalls()).toBe("");
    });

    test("prints the provisioning section for iotedged and how to check the configuration", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });

      const result = runInstall(shell, release, ["--root", root]);

      expect(result.code).toBe(0);
      expect(result.stdout).toContain(
        [
          "provisioning:",
          '  source: "external"',
          '  endpoint: "unix:///var/run/external/external.sock"',
          "  dynamic_reprovisioning: false",
        ].join("\n"),
      );
      expect(result.stdout).toContain("Next steps (on the device):");
      expect(result.stdout).toContain("extprov check --config /etc/extprov/config.yaml");
    });

    test("a second run changes nothing", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true, shadow: true });
      runInstall(shell, release, ["--root", root]);
      const before = listTree(root);

      const result = runInstall(shell, release, ["--root", root]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("nothing to change");
      expect(result.stderr).not.toContain("+ ");
      expect(listTree(root)).toEqual(before);
    });

    test("a newer release replaces the executable and nothing else", async () => {
      const root = makeRoot({ systemd: true });
      runInstall(shell, await makeRelease({ version: "0.1.0" }), ["--root", root]);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);
      const before = listTree(root);

      const result = runInstall(shell, await makeRelease({ version: "0.2.0" }), ["--root", root]);
      const after = listTree(root);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("extprov 0.2.0");
      expect(read(root, "usr/bin/extprov")).toContain("extprov 0.2.0");
      expect(after.filter((entry) => !before.some((old) => Bun.deepEquals(old, entry)))).toEqual([
        {
          ...entryAt(before, "usr/bin/extprov")!,
          content: entryAt(after, "usr/bin/extprov")!.content,
        },
      ]);
      expect(after.length).toBe(before.length);
    });

    test("keeps an existing configuration byte for byte, with its own mode", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const mine =
        "# mine\ndevice: { hubName: h.azure-devices.net, deviceId: d }\r\nno newline at the end";
      write(root, "etc/extprov/config.yaml", mine, 0o600);

      const result = runInstall(shell, release, ["--root", root]);

      expect(result.code).toBe(0);
      expect(read(root, "etc/extprov/config.yaml")).toBe(mine);
      expect(entryAt(listTree(root), "etc/extprov/config.yaml")).toMatchObject({
        mode: "0600",
        owner: "0:0",
      });
      expect(result.stderr).toContain("/etc/extprov/config.yaml is 600 0:0, not 640 0:998");
    });

    test("--dry-run prints what it would do and changes nothing", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true, shadow: true });
      const before = listTree(root);

      const result = runInstall(shell, release, ["--root", root, "--dry-run"]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain(
        `would run: append_line ${root}/etc/passwd extprov:x:998:998:`,
      );
      expect(result.stderr).toContain(
        `would run: place_file ${release}/bin/extprov-linux-x64 ${root}/usr/bin/extprov 755 0:0`,
      );
      expect(result.stderr).toMatch(/dry run: \d+ changes shown above, none made/);
      expect(listTree(root)).toEqual(before);
    });

    test("--dry-run lists the folders it would make once each, as the install records them", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      rmSync(join(root, "usr"), { recursive: true });
      const record = (output: string, prefix: string) =>
        output
          .split("\n")
          .find((line) => line.startsWith(`install.sh: ${prefix}append_lines `))
          ?.split(" ")
          .slice(prefix.split(" ").length + 1, -1);

      const dry = runInstall(shell, release, ["--root", root, "--dry-run"]);
      const real = runInstall(shell, release, ["--root", root]);

      expect(dry.code).toBe(0);
      expect(real.code).toBe(0);
      expect(record(dry.stderr, "would run: ")).toEqual([
        "/usr/bin",
        "/usr",
        "/usr/share/doc/extprov",
        "/usr/share/doc",
        "/usr/share",
        "/lib/systemd/system",
        "/etc/systemd/system/multi-user.target.wants",
        "/var/lib/extprov",
        "/var/lib",
        "/var",
      ]);
      expect(record(real.stderr, "+ ")).toEqual(record(dry.stderr, "would run: ")!);
    });

    test("--dry-run of an upgrade changes nothing either", async () => {
      const root = makeRoot({ systemd: true });
      runInstall(shell, await makeRelease({ version: "0.1.0" }), ["--root", root]);
      const before = listTree(root);

      const result = runInstall(shell, await makeRelease({ version: "0.2.0" }), [
        "--root",
        root,
        "--dry-run",
      ]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("would run: place_file");
      expect(listTree(root)).toEqual(before);
    });

    test("--uninstall removes the executable and the service, and keeps configuration and secrets", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const clean = listTree(root);
      runInstall(shell, release, ["--root", root]);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);
      const installed = listTree(root);

      const result = runInstall(shell, release, ["--root", root, "--uninstall"]);
      const tree = listTree(root);

      expect(result.code).toBe(0);
      expect(result.stderr).toStartWith(
        `install.sh: removing extprov from the root file system at ${root} (an image: nothing is stopped)\n`,
      );
      expect(result.stderr).not.toContain("installing into");
      expect(result.stderr).toContain(`kept ${root}/etc/extprov (configuration and secrets)`);
      expect(result.stderr).toContain(
        `kept the accounts (user extprov, group extprov) in the image: files they own may remain; remove extprov's lines from ${root}/etc/passwd and ${root}/etc/group (and shadow, gshadow), or run userdel --root ${root} extprov where shadow's userdel is available`,
      );
      expect(result.stderr).toContain(
        "kept the group iotedge: iotedged reaches its sockets through it; leave it",
      );
      expect(result.stderr).not.toContain("userdel extprov removes");
      for (const gone of [
        "usr/bin/extprov",
        "lib/systemd/system/extprov.service",
        "usr/share/doc/extprov",
      ]) {
        expect(entryAt(tree, gone)).toBeUndefined();
      }
      expect(
        entryAt(tree, "etc/systemd/system/multi-user.target.wants/extprov.service"),
      ).toBeUndefined();
      for (const kept of [
        "etc/extprov",
        "etc/extprov/config.yaml",
        "etc/extprov/secrets/device.key",
        "etc/passwd",
        "etc/group",
      ]) {
        expect(entryAt(tree, kept)).toEqual(entryAt(installed, kept));
      }
      // Only /etc/extprov stays: the folders install.sh made (usr/bin, lib/systemd/system,
      // usr/share/doc, multi-user.target.wants, var/lib/extprov) are gone with their record.
      const left = tree.filter(
        (entry) => !entry.path.startsWith("etc/extprov") && !entryAt(clean, entry.path),
      );
      expect(left).toEqual([]);
    });

    test("--uninstall keeps a folder it made that holds other files, and one it did not make", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      mkdirSync(join(root, "etc/systemd/system/multi-user.target.wants"));
      runInstall(shell, release, ["--root", root]);
      write(root, "lib/systemd/system/other.service", "[Unit]\n");
      write(root, "usr/bin/other", "#!/bin/sh\n", 0o755);

      const result = runInstall(shell, release, ["--root", root, "--uninstall"]);
      const tree = listTree(root);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`+ rmdir ${root}/usr/share/doc`);
      expect(result.stderr).toContain(`+ rmdir ${root}/var/lib/extprov`);
      for (const kept of [
        "lib/systemd/system",
        "usr/bin",
        "etc/systemd/system/multi-user.target.wants",
      ]) {
        expect(result.stderr).not.toContain(`rmdir ${root}/${kept}\n`);
      }
      expect(entryAt(tree, "lib/systemd/system/other.service")).toBeDefined();
      expect(entryAt(tree, "usr/bin/other")).toBeDefined();
      expect(entryAt(tree, "etc/systemd/system/multi-user.target.wants")).toMatchObject({
        type: "dir",
      });
      for (const gone of ["usr/share", "var", "usr/bin/extprov"]) {
        expect(entryAt(tree, gone)).toBeUndefined();
      }
    });

    test("--uninstall removes only its README from a doc folder that was there before", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "usr/share/doc/extprov/notes.txt", "the builder's notes\n");
      runInstall(shell, release, ["--root", root]);

      const result = runInstall(shell, release, ["--root", root, "--uninstall"]);
      const tree = listTree(root);

      expect(result.code).toBe(0);
      expect(entryAt(tree, "usr/share/doc/extprov/README.md")).toBeUndefined();
      expect(read(root, "usr/share/doc/extprov/notes.txt")).toBe("the builder's notes\n");
    });

    test("--uninstall --purge also removes /etc/extprov; a second time there is nothing to do", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      runInstall(shell, release, ["--root", root]);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);

      const purge = runInstall(shell, release, ["--root", root, "--uninstall", "--purge"]);
      const again = runInstall(shell, release, ["--root", root, "--uninstall", "--purge"]);

      expect(purge.code).toBe(0);
      expect(existsSync(join(root, "etc/extprov"))).toBe(false);
      expect(existsSync(join(root, "usr/bin/extprov"))).toBe(false);
      expect(again.code).toBe(0);
      expect(again.stderr).toContain("extprov is not installed");
      expect(again.stderr).toContain("nothing to change");
    });

    test("--uninstall --purge --dry-run changes nothing", async () => {
      const release = await makeRelease();
      const root = makeRoot({ rc: "sysv" });
      runInstall(shell, release, ["--root", root]);
      const before = listTree(root);

      const result = runInstall(shell, release, [
        "--root",
        root,
        "--uninstall",
        "--purge",
        "--dry-run",
      ]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`would run: rm -rf ${root}/etc/rc2.d/S19extprov`);
      expect(result.stderr).toContain(`would run: rm -rf ${root}/etc/extprov`);
      const rmdir = `would run: rmdir ${root}/var/lib/extprov (if nothing else is left in it by then)`;
      expect(result.stderr.split(rmdir)).toHaveLength(2);
      expect(listTree(root)).toEqual(before);
    });

    test("--purge without --uninstall is refused before anything changes", async () => {
      const release = await makeRelease();
      const root = makeRoot();
      const before = listTree(root);

      const result = runInstall(shell, release, ["--root", root, "--purge"]);

      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        "--purge removes /etc/extprov and goes only with --uninstall",
      );
      expect(listTree(root)).toEqual(before);
    });

    test("an image without systemd gets the init script and SysV runlevel links", async () => {
      const release = await makeRelease();
      const root = makeRoot({ rc: "sysv" });

      const result = runInstall(shell, release, ["--root", root]);
      const tree = listTree(root);

      expect(result.code).toBe(0);
      expect(entryAt(tree, "etc/init.d/extprov")).toMatchObject({ mode: "0755", owner: "0:0" });
      expect(read(root, "etc/init.d/extprov")).toBe(read(projectRoot, "build/init/extprov.init"));
      expect(linksIn(tree)).toEqual([
        "etc/rc0.d/K81extprov -> ../init.d/extprov",
        "etc/rc1.d/K81extprov -> ../init.d/extprov",
        "etc/rc2.d/S19extprov -> ../init.d/extprov",
        "etc/rc3.d/S19extprov -> ../init.d/extprov",
        "etc/rc4.d/S19extprov -> ../init.d/extprov",
        "etc/rc5.d/S19extprov -> ../init.d/extprov",
        "etc/rc6.d/K81extprov -> ../init.d/extprov",
      ]);
      expect(entryAt(tree, "lib/systemd/system/extprov.service")).toBeUndefined();
      expect(result.stdout).toContain("/etc/init.d/extprov restart");
      expect(result.stdout).toContain("then restart iotedged: /etc/init.d/iotedge restart");
      expect(result.stdout).not.toContain("systemctl");
      expect(runInstall(shell, release, ["--root", root]).stderr).toContain("nothing to change");
      expect(listTree(root)).toEqual(tree);
    });

    test("with the init script, its log file is given to logrotate, and taken back on uninstall", async () => {
      const release = await makeRelease();
      const root = makeRoot({ rc: "sysv" });
      mkdirSync(join(root, "etc/logrotate.d"));

      const result = runInstall(shell, release, ["--root", root]);

      expect(result.code).toBe(0);
      expect(entryAt(listTree(root), "etc/logrotate.d/extprov")).toMatchObject({
        mode: "0644",
        owner: "0:0",
      });
      expect(read(root, "etc/logrotate.d/extprov")).toBe(
        read(projectRoot, "build/init/extprov.logrotate"),
      );
      expect(result.stderr).not.toContain("nothing will rotate");

      const uninstall = runInstall(shell, release, ["--root", root, "--uninstall"]);

      expect(uninstall.code).toBe(0);
      expect(existsSync(join(root, "etc/logrotate.d/extprov"))).toBe(false);
      expect(existsSync(join(root, "etc/logrotate.d"))).toBe(true);
    });

    test("a BusyBox image whose rcS starts /etc/init.d/S??* gets an S49extprov link", async () => {
      const release = await makeRelease();
      const root = makeRoot({ rc: "busybox", libc: "musl" });

      const result = runInstall(shell, release, ["--root", root]);
      const uninstall = runInstall(shell, release, ["--root", root, "--uninstall"]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("extprov-linux-x64-musl for x64/musl, sysv init");
      expect(result.stderr).toContain("no libstdc++.so.6 in");
      expect(result.stderr).toContain(
        `install.sh: warning: no ${root}/etc/logrotate.d: nothing will rotate ${root}/var/log/extprov.log`,
      );
      expect(uninstall.code).toBe(0);
      expect(uninstall.stderr).toContain(`+ rm -rf ${root}/etc/init.d/S49extprov`);
      expect(existsSync(join(root, "etc/init.d/extprov"))).toBe(false);
    });

    test("an OpenRC image gets the openrc-run script, started in the default runlevel", async () => {
      const release = await makeRelease();
      const root = makeRoot({ rc: "openrc", libc: "musl" });
      mkdirSync(join(root, "etc/logrotate.d"));

      const result = runInstall(shell, release, ["--root", root]);
      const tree = listTree(root);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("extprov-linux-x64-musl for x64/musl, openrc init");
      expect(entryAt(tree, "etc/init.d/extprov")).toMatchObject({ mode: "0755", owner: "0:0" });
      expect(read(root, "etc/init.d/extprov")).toBe(read(projectRoot, "build/init/extprov.openrc"));
      expect(linksIn(tree)).toEqual(["etc/runlevels/default/extprov -> /etc/init.d/extprov"]);
      expect(existsSync(join(root, "etc/logrotate.d/extprov"))).toBe(true);
      expect(result.stderr).not.toContain("no rcN.d folders");
      expect(runInstall(shell, release, ["--root", root]).stderr).toContain("nothing to change");

      const uninstall = runInstall(shell, release, ["--root", root, "--uninstall"]);

      expect(uninstall.code).toBe(0);
      expect(existsSync(join(root, "etc/init.d/extprov"))).toBe(false);
      expect(existsSync(join(root, "etc/runlevels/default/extprov"))).toBe(false);
      expect(existsSync(join(root, "etc/runlevels/default"))).toBe(true);
    });

    test("--init sysv overrides an image's systemd", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });

      const result = runInstall(shell, release, ["--root", root, "--init", "sysv"]);

      expect(result.code).toBe(0);
      expect(existsSync(join(root, "etc/init.d/extprov"))).toBe(true);
      expect(existsSync(join(root, "lib/systemd/system/extprov.service"))).toBe(false);
    });
  },
);
