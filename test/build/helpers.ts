/**
 * Shared by the build tests: a build into a temporary folder, the tools the tests need (a
 * missing one fails its test, naming the Debian package), and a way to run an executable
 * for another CPU under qemu.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Target } from "../../build/targets.ts";

export const projectRoot = resolve(import.meta.dir, "..", "..");

export const demoAnswer = {
  hubName: "demo-hub.azure-devices.net",
  deviceId: "extprov-demo-device",
  key: "RkFLRSBkZW1vIGtleSBmb3IgZXh0cHJvdjsgbm90IGEgc2VjcmV0IQ==",
};

/** Every target, so the musl builds can be inspected too. */
export const allTargets = [
  "linux-x64",
  "linux-x64-baseline",
  "linux-arm64",
  "linux-x64-musl",
  "linux-arm64-musl",
].join(",");

/**
 * Runs `bun build/compile.ts` into a new temporary folder and returns that folder; the
 * caller removes it in its afterAll (bun test runs no process exit handlers).
 */
export async function buildInto(targets: string, options: { archives: boolean }): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), "extprov-build-test-"));
  const flags = options.archives ? [] : ["--no-archives"];

  const child = Bun.spawn(
    [process.execPath, "build/compile.ts", "--target", targets, "--out", outDir, ...flags],
    { cwd: projectRoot, stdout: "pipe", stderr: "pipe" },
  );
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);

  if (code !== 0) {
    rmSync(outDir, { recursive: true, force: true });
    throw new Error(`the build failed (exit ${code}):\n${stdout}${stderr}`);
  }

  return outDir;
}

/** The tools the build tests use, and the Debian package `.ci/run` installs each from. */
const tools = {
  curl: { path: "/usr/bin/curl", debian: "curl" },
  readelf: { path: "/usr/bin/readelf", debian: "binutils" },
  sha256sum: { path: "/usr/bin/sha256sum", debian: "coreutils" },
  "qemu-aarch64-static": { path: "/usr/bin/qemu-aarch64-static", debian: "qemu-user-static" },
  "qemu-x86_64-static": { path: "/usr/bin/qemu-x86_64-static", debian: "qemu-user-static" },
  "arm64 glibc": {
    path: "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
    debian: "libc6-arm64-cross",
  },
  "x64 glibc": {
    path: "/usr/x86_64-linux-gnu/lib/ld-linux-x86-64.so.2",
    debian: "libc6-amd64-cross",
  },
} as const;

/** Fails the calling test when a tool is missing, rather than letting it pass unchecked. */
export function requireTool(name: keyof typeof tools): string {
  const tool = tools[name];
  if (!existsSync(tool.path)) {
    const install = `apt-get install ${tool.debian}`;
    throw new Error(`${tool.path} is missing: .ci/run installs it (${install})`);
  }

  return tool.path;
}

/**
 * The command that runs a target's executable here: directly on its own CPU, else under
 * qemu user emulation. binfmt_misc is often not registered in a container, so qemu is
 * called by name, and `-L` points it at the cross glibc where `/lib/ld-linux-*.so.1` lies.
 */
export function runnerFor(target: Target, executable: string): string[] {
  if (target.arch === process.arch) return [executable];

  if (target.arch === "arm64") {
    const qemu = requireTool("qemu-aarch64-static");
    requireTool("arm64 glibc");
    return [qemu, "-L", "/usr/aarch64-linux-gnu", executable];
  }

  const qemu = requireTool("qemu-x86_64-static");
  requireTool("x64 glibc");
  return [qemu, "-L", "/usr/x86_64-linux-gnu", executable];
}

/** A fresh folder for one test; removed by the returned disposer. */
export function temporaryFolder(prefix: string): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs a command to its end and returns its exit code and output. */
export async function runToEnd(
  command: string[],
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(command, { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);

  return { code, stdout, stderr };
}
