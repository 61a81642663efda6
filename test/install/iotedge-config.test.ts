/**
 * install.sh --configure-iotedge: the top-level provisioning: section of IoT Edge 1.1's
 * /etc/iotedge/config.yaml is replaced, everything else stays byte for byte, and the
 * original is kept as a dated backup.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  entryAt,
  listTree,
  makeRelease,
  makeRoot,
  read,
  runInstall,
  shells,
  write,
  installSkipReason,
} from "./helpers.ts";

const sample = readFileSync(join(import.meta.dir, "fixtures/iotedge-1.1-config.yaml"), "utf8");

const manualSection = `provisioning:
  source: "manual"
  device_connection_string: "<ADD DEVICE CONNECTION STRING HERE>"

  # Optional: re-provision when the hub says the identity changed
  dynamic_reprovisioning: false
`;

function externalSection(endpoint = "unix:///var/run/external/external.sock"): string {
  return `provisioning:
  source: "external"
  endpoint: "${endpoint}"
  dynamic_reprovisioning: false
`;
}

function backups(root: string): string[] {
  return readdirSync(join(root, "etc/iotedge")).filter((name) =>
    name.startsWith("config.yaml.extprov-backup-"),
  );
}

describe.skipIf(installSkipReason !== undefined).each(shells)(
  "install.sh --configure-iotedge under %s",
  (shell) => {
    test("replaces the provisioning section, keeps the rest and a backup of the original", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "etc/iotedge/config.yaml", sample, 0o600, 42);

      const result = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);
      const edited = read(root, "etc/iotedge/config.yaml");
      const [backup] = backups(root);

      expect(result.code).toBe(0);
      expect(edited).toBe(sample.replace(manualSection, externalSection()));
      expect(Bun.YAML.parse(edited)).toEqual({
        ...(Bun.YAML.parse(sample) as object),
        provisioning: {
          source: "external",
          endpoint: "unix:///var/run/external/external.sock",
          dynamic_reprovisioning: false,
        },
      });
      expect(backups(root)).toHaveLength(1);
      expect(backup).toMatch(/^config\.yaml\.extprov-backup-\d{8}-\d{6}$/);
      expect(read(root, `etc/iotedge/${backup}`)).toBe(sample);
      expect(entryAt(listTree(root), "etc/iotedge/config.yaml")).toMatchObject({
        mode: "0600",
        owner: "0:42",
      });
      expect(result.stdout).toContain(
        `written by --configure-iotedge; the old file is ${root}/etc/iotedge/${backup}`,
      );
    });

    test("a second run leaves the file alone and makes no second backup", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "etc/iotedge/config.yaml", sample);
      runInstall(shell, release, ["--root", root, "--configure-iotedge"]);
      const before = listTree(root);

      const result = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain("already sends iotedged to extprov");
      expect(listTree(root)).toEqual(before);
    });

    test("uses the endpoint of an existing extprov configuration", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "etc/iotedge/config.yaml", sample);
      write(
        root,
        "etc/extprov/config.yaml",
        'listen:\n  # where\n  endpoint: "unix:///run/ep/extprov.sock"  # mine\n',
        0o640,
      );

      const result = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

      expect(result.code).toBe(0);
      expect(read(root, "etc/iotedge/config.yaml")).toContain(
        externalSection("unix:///run/ep/extprov.sock"),
      );
    });

    test("adds the section at the end of a file that has none", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const withoutSection = sample.replace(manualSection, "");
      write(root, "etc/iotedge/config.yaml", withoutSection);

      const result = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

      expect(result.code).toBe(0);
      expect(read(root, "etc/iotedge/config.yaml")).toBe(`${withoutSection}\n${externalSection()}`);
    });

    test("takes a top-level comment between two indented lines as part of the section", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const text =
        'provisioning:\n  source: "manual"\n# inside\n  device_connection_string: "x"\n\n# after\nagent:\n  name: "edgeAgent"\n';
      write(root, "etc/iotedge/config.yaml", text);

      runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

      expect(read(root, "etc/iotedge/config.yaml")).toBe(
        `${externalSection()}\n# after\nagent:\n  name: "edgeAgent"\n`,
      );
    });

    test("refuses, before any change, when iotedged's configuration is missing or has two sections", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      const before = listTree(root);

      const missing = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);
      write(root, "etc/iotedge/config.yaml", `${manualSection}\n${manualSection}`);
      const twice = runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(
        "/etc/iotedge/config.yaml does not exist: install IoT Edge 1.1 first",
      );
      expect(twice.code).toBe(1);
      expect(twice.stderr).toContain("has 2 top-level provisioning: sections");
      expect(listTree(root).filter((entry) => !entry.path.startsWith("etc/iotedge"))).toEqual(
        before,
      );
    });

    test("--dry-run shows the edit and changes nothing", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "etc/iotedge/config.yaml", sample);
      const before = listTree(root);

      const result = runInstall(shell, release, [
        "--root",
        root,
        "--configure-iotedge",
        "--dry-run",
      ]);

      expect(result.code).toBe(0);
      expect(result.stderr).toContain(
        `would run: write_iotedge_config ${root}/etc/iotedge/config.yaml`,
      );
      expect(listTree(root)).toEqual(before);
    });

    for (const uninstall of [["--uninstall"], ["--uninstall", "--purge"]]) {
      test(`${uninstall.join(" ")} warns that iotedged is still sent to extprov's endpoint`, async () => {
        const release = await makeRelease();
        const root = makeRoot({ systemd: true });
        write(root, "etc/iotedge/config.yaml", sample);
        runInstall(shell, release, ["--root", root, "--configure-iotedge"]);

        const result = runInstall(shell, release, ["--root", root, ...uninstall]);

        expect(result.code).toBe(0);
        expect(result.stderr).toContain(
          `warning: ${root}/etc/iotedge/config.yaml still sends iotedged to unix:///var/run/external/external.sock, which nothing serves now; replace its provisioning: section`,
        );
      });
    }

    test("--uninstall says nothing of iotedged's configuration when it provisions otherwise", async () => {
      const release = await makeRelease();
      const root = makeRoot({ systemd: true });
      write(root, "etc/iotedge/config.yaml", sample);
      runInstall(shell, release, ["--root", root]);

      const result = runInstall(shell, release, ["--root", root, "--uninstall"]);

      expect(result.code).toBe(0);
      expect(result.stderr).not.toContain("iotedge/config.yaml");
    });
  },
);
