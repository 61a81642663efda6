/**
 * Symbolic links in an image (--root) under dash and BusyBox ash: a link on the way to any
 * path install.sh writes, makes or removes that leads out of the image stops it before the
 * first change, for an install, --uninstall and --purge, and names the link; links that
 * stay inside the image, or that install.sh does not go through, keep working.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import {
  entryAt,
  listTree,
  makeRelease,
  makeRoot,
  read,
  runInstall,
  shells,
  write,
  type RootOptions,
  type RunResult,
  installSkipReason,
} from "./helpers.ts";

/** Moves `path` of the image to `outside` and leaves an absolute link to it in its place. */
function linkOut(root: string, path: string, outside: string): void {
  const inImage = join(root, path);
  if (existsSync(inImage)) {
    rmSync(outside, { recursive: true });
    renameSync(inImage, outside);
  }
  mkdirSync(dirname(inImage), { recursive: true });
  symlinkSync(outside, inImage);
}

/** Runs install.sh and expects it refused with one error line, having changed nothing. */
function expectRefused(run: () => RunResult, root: string, outside: string): string {
  const image = listTree(root);
  const there = listTree(outside);

  const result = run();
  const errors = result.stderr.split("\n").filter((line) => line.includes("error:"));

  expect(result.code).toBe(1);
  expect(errors).toHaveLength(1);
  expect(result.stderr).not.toContain("install.sh: + ");
  expect(listTree(root)).toEqual(image);
  expect(listTree(outside)).toEqual(there);
  return errors[0]!;
}

const absolute = "(an absolute link is followed on this machine, not in the image)";
const fix = (link: string) =>
  `replace ${link} with a folder or file of the image's own, or with a relative link that stays inside the image`;

describe.skipIf(installSkipReason !== undefined).each(shells)(
  "install.sh under %s, with a link out of the image",
  (shell) => {
    test("etc/extprov: the install stops before writing config.yaml or secrets/ there", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const outside = tempDir("extprov-outside-");
      linkOut(root, "etc/extprov", outside);

      for (const args of [[], ["--dry-run"]]) {
        const error = expectRefused(
          () => runInstall(shell, release, ["--root", root, ...args]),
          root,
          outside,
        );

        expect(error).toBe(
          `install.sh: error: ${root}/etc/extprov is a link to ${outside} ${absolute}, which leads out of the image; nothing was changed: ${fix(`${root}/etc/extprov`)}`,
        );
      }
      expect(existsSync(join(outside, "secrets"))).toBe(false);
      expect(existsSync(join(outside, "config.yaml"))).toBe(false);
    });

    test.each(["var", "var/lib"])(
      "%s: the install stops before making var/lib/extprov/made-folders there",
      async (path) => {
        const release = await makeRelease();
        const root = makeRoot({ systemd: true });
        const outside = tempDir("extprov-outside-");
        if (path === "var/lib") mkdirSync(join(root, "var"));
        linkOut(root, path, outside);
        const under = path === "var" ? "/lib/extprov" : "/extprov";

        const error = expectRefused(
          () => runInstall(shell, release, ["--root", root]),
          root,
          outside,
        );

        expect(error).toBe(
          `install.sh: error: ${root}/var/lib/extprov leads out of the image, to ${outside}${under}: ${root}/${path} is a link to ${outside} ${absolute}; nothing was changed: ${fix(`${root}/${path}`)}`,
        );
        expect(existsSync(join(root, "usr/bin/extprov"))).toBe(false);
      },
    );

    test("etc/extprov: --uninstall --purge stops before removing anything, and the secrets stay", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const outside = tempDir("extprov-outside-");
      expect(runInstall(shell, release, ["--root", root]).code).toBe(0);
      write(root, "etc/extprov/secrets/device.key", "a key\n", 0o600);
      linkOut(root, "etc/extprov", outside);

      const error = expectRefused(
        () => runInstall(shell, release, ["--root", root, "--uninstall", "--purge"]),
        root,
        outside,
      );

      expect(error).toContain(`${root}/etc/extprov is a link to ${outside} ${absolute}`);
      expect(read(outside, "secrets/device.key")).toBe("a key\n");
      expect(entryAt(listTree(root), "etc/extprov")).toMatchObject({ type: "link" });
      expect(existsSync(join(root, "usr/bin/extprov"))).toBe(true);
    });

    test.each([[["--purge"]], [[]]])(
      "var: --uninstall %p stops before removing anything, through it or not",
      async (extra) => {
        const release = await makeRelease();
        const root = makeRoot({ systemd: true });
        const outside = tempDir("extprov-outside-");
        expect(runInstall(shell, release, ["--root", root]).code).toBe(0);
        linkOut(root, "var", outside);
        write(outside, "log/extprov.log", "a log\n");

        const error = expectRefused(
          () => runInstall(shell, release, ["--root", root, "--uninstall", ...extra]),
          root,
          outside,
        );

        expect(error).toContain(
          `${root}/var/lib/extprov/made-folders leads out of the image, to ${outside}/lib/extprov/made-folders: ${root}/var is a link to ${outside}`,
        );
        expect(existsSync(join(outside, "lib/extprov/made-folders"))).toBe(true);
        expect(existsSync(join(root, "usr/bin/extprov"))).toBe(true);
        expect(existsSync(join(root, "etc/extprov/config.yaml"))).toBe(true);
      },
    );

    // Each init's own folders: the unit's, the start links', logrotate's, OpenRC's runlevel.
    test.each<[string, RootOptions, string, string]>([
      ["lib/systemd", { systemd: true }, "lib/systemd/system", "/system"],
      [
        "etc/systemd/system",
        { systemd: true },
        "etc/systemd/system/multi-user.target.wants",
        "/multi-user.target.wants",
      ],
      ["etc/rc3.d", { rc: "sysv" }, "etc/rc3.d/S19extprov", "/S19extprov"],
      ["etc/logrotate.d", { rc: "sysv" }, "etc/logrotate.d/extprov", "/extprov"],
      ["etc/init.d", { rc: "busybox" }, "etc/init.d/extprov", "/extprov"],
      ["etc/runlevels/default", { rc: "openrc" }, "etc/runlevels/default/extprov", "/extprov"],
    ])("%s: the install stops before writing there", async (path, options, first, under) => {
      const release = await makeRelease();
      const root = makeRoot(options);
      if (path === "etc/logrotate.d") mkdirSync(join(root, path), { recursive: true });
      const outside = tempDir("extprov-outside-");
      linkOut(root, path, outside);

      const error = expectRefused(
        () => runInstall(shell, release, ["--root", root]),
        root,
        outside,
      );

      expect(error).toBe(
        `install.sh: error: ${root}/${first} leads out of the image, to ${outside}${under}: ${root}/${path} is a link to ${outside} ${absolute}; nothing was changed: ${fix(`${root}/${path}`)}`,
      );
    });

    test("etc/iotedge: --configure-iotedge stops before backing up or replacing its config.yaml", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const outside = tempDir("extprov-outside-");
      write(root, "etc/iotedge/config.yaml", "provisioning:\n  source: manual\n");
      linkOut(root, "etc/iotedge", outside);

      const error = expectRefused(
        () => runInstall(shell, release, ["--root", root, "--configure-iotedge"]),
        root,
        outside,
      );

      expect(error).toContain(
        `${root}/etc/iotedge/config.yaml leads out of the image, to ${outside}/config.yaml: ${root}/etc/iotedge is a link to ${outside}`,
      );
    });

    test("a relative link that climbs out of the image is refused as well", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const outside = tempDir("extprov-outside-");
      symlinkSync(`../../..${outside}`, join(root, "usr/share"));

      const error = expectRefused(
        () => runInstall(shell, release, ["--root", root]),
        root,
        outside,
      );

      expect(error).toContain(
        `${root}/usr/share/doc/extprov leads out of the image, to ${outside}/doc/extprov: ${root}/usr/share is a link to ../../..${outside}; nothing was changed`,
      );
    });
  },
);

describe.skipIf(installSkipReason !== undefined).each(shells)(
  "install.sh under %s, with links that stay in the image",
  (shell) => {
    test("merged /usr, var/run -> /run and a relative etc/extprov: installed and purged inside", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true, shadow: true });
      renameSync(join(root, "lib"), join(root, "usr/lib"));
      symlinkSync("usr/lib", join(root, "lib"));
      mkdirSync(join(root, "usr/bin"));
      symlinkSync("usr/bin", join(root, "bin"));
      // Debian's own absolute links: install.sh writes nothing through them.
      mkdirSync(join(root, "var"));
      symlinkSync("/run", join(root, "var/run"));
      symlinkSync("/run/lock", join(root, "var/lock"));
      mkdirSync(join(root, "data/log"), { recursive: true });
      symlinkSync("../data/log", join(root, "var/log"));
      mkdirSync(join(root, "data/extprov"));
      symlinkSync("../data/extprov", join(root, "etc/extprov"));
      // An absolute link that this machine follows to a folder inside the image.
      mkdirSync(join(root, "data/doc"));
      mkdirSync(join(root, "usr/share"));
      symlinkSync(join(root, "data/doc"), join(root, "usr/share/doc"));

      const install = runInstall(shell, release, ["--root", root]);

      expect(install.stderr).not.toContain("error");
      expect(install.code).toBe(0);
      expect(entryAt(listTree(root), "usr/lib/systemd/system/extprov.service")).toBeDefined();
      expect(entryAt(listTree(root), "data/extprov/secrets")).toMatchObject({ mode: "0700" });
      expect(entryAt(listTree(root), "data/doc/extprov/README.md")).toBeDefined();
      write(root, "var/log/extprov.log", "a log\n");

      const purge = runInstall(shell, release, ["--root", root, "--uninstall", "--purge"]);

      expect(purge.stderr).not.toContain("error");
      expect(purge.code).toBe(0);
      expect(existsSync(join(root, "usr/bin/extprov"))).toBe(false);
      expect(existsSync(join(root, "data/log/extprov.log"))).toBe(false);
      for (const link of ["lib", "bin", "var/run", "var/lock", "usr/share/doc"]) {
        expect(entryAt(listTree(root), link)).toMatchObject({ type: "link" });
      }
    });

    test("--root takes a relative folder whose name starts with a dash", async () => {
      const release = await makeRelease();
      const parent = tempDir("extprov-parent-");
      const root = join(parent, "-image");
      renameSync(makeRoot({ systemd: true }), root);

      const result = runInstall(shell, release, ["--root", "-image"], {}, parent);
      const again = runInstall(shell, release, ["--root=-image", "--dry-run"], {}, parent);

      expect(result.stderr).not.toContain("Illegal option");
      expect(result.code).toBe(0);
      expect(result.stderr).toStartWith(
        `install.sh: installing into the root file system at ${root} `,
      );
      expect(read(root, "usr/bin/extprov")).toContain("extprov 0.1.0");
      expect(again.code).toBe(0);
      expect(again.stderr).toContain("nothing to change");
    });
  },
);
