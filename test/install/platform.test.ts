/**
 * Which executable install.sh picks for a CPU and C library, and what it refuses before
 * changing anything: unsupported CPUs, a 32-bit userland, an x86-64 CPU without SSE4.2,
 * a release without the right executable, and image paths that lead out of the image.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import {
  listTree,
  makeRelease,
  makeRoot,
  read,
  runInstall,
  shells,
  installSkipReason,
} from "./helpers.ts";

const supported = "extprov runs on x64 (x86_64) and arm64 (aarch64), each with glibc or musl";

/** The first bytes of an ELF executable: class 1 (32-bit) or 2 (64-bit), little-endian. */
function elfHeader(bits: 32 | 64, machine: number): Buffer {
  const header = Buffer.alloc(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, bits === 32 ? 1 : 2, 1, 1], 0);
  header.writeUInt16LE(2, 16);
  header.writeUInt16LE(machine, 18);
  return header;
}

const machines = { x64: 0x3e, arm64: 0xb7, arm: 0x28 };

function cpuinfo(flags: string): string {
  const file = join(tempDir("extprov-cpuinfo-"), "cpuinfo");
  writeFileSync(file, `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\n\n`);
  return file;
}

const nehalemFlags = "fpu vme de pse tsc msr sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm";
const core2Flags = "fpu vme de pse tsc msr sse sse2 ssse3 cx16 sse4_1 lahf_lm";

describe.skipIf(installSkipReason !== undefined).each(shells)("install.sh under %s", (shell) => {
  test("refuses a 32-bit ARM CPU (armv7l), naming what is supported, and changes nothing", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    const before = listTree(root);

    const result = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "armv7l" });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error: this CPU (armv7l) is not supported: ${supported}`);
    expect(listTree(root)).toEqual(before);
  });

  test("refuses i686 and --arch armhf the same way", async () => {
    const release = await makeRelease();
    const root = makeRoot();

    const i686 = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "i686" });
    const armhf = runInstall(shell, release, ["--root", root, "--arch", "armhf"]);

    expect(i686.code).toBe(1);
    expect(i686.stderr).toContain(supported);
    expect(armhf.code).toBe(2);
    expect(armhf.stderr).toContain(`--arch armhf is not supported; ${supported}`);
  });

  test("takes the arm64 executable for aarch64", async () => {
    const release = await makeRelease();
    const root = makeRoot();

    const result = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "aarch64" });

    expect(result.code).toBe(0);
    expect(read(root, "usr/bin/extprov")).toContain("linux-arm64)");
  });

  test("says which archive to use when the release lacks the device's executable", async () => {
    const release = await makeRelease();
    const root = makeRoot({ libc: "musl" });
    const before = listTree(root);

    const result = runInstall(shell, release, ["--root", root, "--arch", "arm64"]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("has no extprov-linux-arm64-musl, only extprov-linux-arm64");
    expect(result.stderr).toContain("use extprov-<version>-linux-arm64-musl.tar.gz");
    expect(listTree(root)).toEqual(before);
  });

  test("refuses an x86-64 CPU without SSE4.2", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    const before = listTree(root);

    const result = runInstall(shell, release, ["--root", root], {
      EXTPROV_CPUINFO: cpuinfo(core2Flags),
    });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "this x86-64 CPU lacks SSE4.2, which extprov's runtime (Bun) needs",
    );
    expect(listTree(root)).toEqual(before);
  });

  test("takes x64-baseline for a CPU without AVX2 only when the release has it", async () => {
    const withBaseline = await makeRelease();
    const withoutBaseline = await makeRelease({ targets: ["linux-x64"] });
    const first = makeRoot();
    const second = makeRoot();
    const third = makeRoot();

    runInstall(shell, withBaseline, ["--root", first], { EXTPROV_CPUINFO: cpuinfo(nehalemFlags) });
    runInstall(shell, withBaseline, ["--root", second], {
      EXTPROV_CPUINFO: cpuinfo(`${nehalemFlags} avx avx2`),
    });
    const result = runInstall(shell, withoutBaseline, ["--root", third], {
      EXTPROV_CPUINFO: cpuinfo(nehalemFlags),
    });

    expect(read(first, "usr/bin/extprov")).toContain("linux-x64-baseline)");
    expect(read(second, "usr/bin/extprov")).toContain("linux-x64)");
    expect(result.code).toBe(0);
    expect(read(third, "usr/bin/extprov")).toContain("linux-x64)");
  });

  test("refuses a 32-bit userland on a 64-bit kernel, read from the image's /bin/sh", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    mkdirSync(join(root, "bin"));
    writeFileSync(join(root, "bin/busybox"), elfHeader(32, machines.arm));
    // An absolute link, as in BusyBox images: it must be followed inside the image.
    symlinkSync("/bin/busybox", join(root, "bin/sh"));
    const before = listTree(root);

    const result = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "aarch64" });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `the userland in ${root}/ is 32-bit (32-bit ARM): extprov needs a 64-bit one`,
    );
    expect(listTree(root)).toEqual(before);
  });

  test("refuses an arm64 image for an x64 install and says to pass --arch", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    mkdirSync(join(root, "bin"));
    writeFileSync(join(root, "bin/sh"), elfHeader(64, machines.arm64));

    const refused = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "x86_64" });
    const accepted = runInstall(shell, release, ["--root", root, "--arch", "arm64"], {
      EXTPROV_UNAME_M: "x86_64",
    });

    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("/bin/sh is built for arm64, not x64: pass --arch arm64");
    expect(accepted.code).toBe(0);
    expect(read(root, "usr/bin/extprov")).toContain("linux-arm64)");
  });

  test("accepts an image whose /bin/sh is a 64-bit x86-64 executable", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    mkdirSync(join(root, "bin"));
    writeFileSync(join(root, "bin/sh"), elfHeader(64, machines.x64));

    const result = runInstall(shell, release, ["--root", root], { EXTPROV_UNAME_M: "x86_64" });

    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain("userland is not checked");
  });

  test("asks for --libc when the image shows no C library", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    rmSync(join(root, "lib64"), { recursive: true });

    const result = runInstall(shell, release, ["--root", root]);
    const told = runInstall(shell, release, ["--root", root, "--libc", "musl"]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("pass --libc glibc or --libc musl");
    expect(told.code).toBe(0);
    expect(read(root, "usr/bin/extprov")).toContain("linux-x64-musl)");
  });

  test("refuses a folder that is not a root file system", async () => {
    const release = await makeRelease();
    const folder = tempDir("extprov-not-a-root-");

    const result = runInstall(shell, release, ["--root", folder]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("does not look like a root file system");
    expect(readdirSync(folder)).toEqual([]);
  });

  test("refuses to write through a link that leads out of the image", async () => {
    const release = await makeRelease();
    const root = makeRoot();
    const outside = tempDir("extprov-outside-");
    rmSync(join(root, "usr"), { recursive: true });
    symlinkSync(outside, join(root, "usr"));

    const result = runInstall(shell, release, ["--root", root]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${root}/usr/bin leads out of the image, to ${outside}/bin: ${root}/usr is a link to ${outside}`,
    );
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(root, "etc/extprov"))).toBe(false);
  });

  test("--help describes the options and the environment overrides", async () => {
    const release = await makeRelease();

    const result = runInstall(shell, release, ["--help"]);

    expect(result.code).toBe(0);
    for (const text of [
      "--root DIR",
      "--arch x64|arm64",
      "--libc glibc|musl",
      "--init systemd|sysv",
      "--configure-iotedge",
      "--dry-run",
      "--uninstall",
      "--purge",
      "/var/log/extprov.log",
      "keep /etc/extprov\n                        and the accounts",
      "EXTPROV_UNAME_M",
      "EXTPROV_CPUINFO",
    ]) {
      expect(result.stdout).toContain(text);
    }
  });
});
