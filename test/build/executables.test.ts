/**
 * The compiled executables, run where they can run: natively, under qemu for arm64, and
 * under qemu on an emulated CPU without AVX. Each serves the built-in demo from a fresh
 * folder and is asked through its socket with fetch and with curl.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { executableName, targets, type Target } from "../../build/targets.ts";
import {
  allTargets,
  buildInto,
  demoAnswer,
  projectRoot,
  requireTool,
  runnerFor,
  runToEnd,
  temporaryFolder,
} from "./helpers.ts";
import { notifyListener } from "../helpers/notify.ts";
import { startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";

const query = "http://localhost/device/provisioninginformation?api-version=2019-04-10";

let dist: string;

// Executables only: the archives are release.test.ts's concern and take most of a build.
beforeAll(async () => {
  dist = await buildInto(allTargets, { archives: false });
}, 300_000);

afterAll(() => rmSync(dist, { recursive: true, force: true }));

function target(name: string): Target {
  return targets.find((t) => t.name === name)!;
}

function executable(t: Target): string {
  return join(dist, executableName(t));
}

async function expectedVersionLine(t: Target): Promise<string> {
  const manifest = await Bun.file(join(projectRoot, "package.json")).json();
  const git = await runToEnd(["git", "rev-parse", "--short", "HEAD"], projectRoot);
  const commit = git.stdout.trim();

  return `extprov ${manifest.version} (commit ${commit}, bun ${Bun.version}, linux-${t.arch})`;
}

/** Starts `serve --demo` in a fresh folder, asks it once by fetch and once by curl, stops it. */
async function serveDemoAndAsk(command: string[]): Promise<void> {
  const curl = requireTool("curl");
  using folder = temporaryFolder("extprov-serve-");
  const unix = join(folder.path, "run", "external.sock");

  const child = Bun.spawn([...command, "serve", "--demo"], {
    cwd: folder.path,
    stdout: "ignore",
    stderr: "pipe",
  });
  const log = new Response(child.stderr).text();

  try {
    const fetched = await waitForAnswer(unix, child);
    expectDemo(fetched);

    const curled = await runToEnd([curl, "--silent", "--fail", "--unix-socket", unix, query]);
    expect(curled.code).toBe(0);
    expectDemo(JSON.parse(curled.stdout));
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`${String(error)}\nextprov said:\n${await log}`);
  }

  child.kill("SIGTERM");

  expect(await child.exited).toBe(0);
  expect(existsSync(unix)).toBe(false);
}

async function waitForAnswer(unix: string, child: Bun.Subprocess): Promise<unknown> {
  // Under qemu the first answer takes about a second; allow for a slow machine.
  const deadline = performance.now() + 30_000;

  while (performance.now() < deadline && child.exitCode === null) {
    const response = await fetch(query, { unix }).catch(() => undefined);
    if (response) {
      expect(response.status).toBe(200);
      return response.json();
    }

    await Bun.sleep(20);
  }

  throw new Error(`no answer on ${unix} (exit code ${child.exitCode})`);
}

function expectDemo(body: any): void {
  expect(body.hubName).toBe(demoAnswer.hubName);
  expect(body.deviceId).toBe(demoAnswer.deviceId);
  expect(body.credentials.authType).toBe("symmetric-key");
  expect(body.credentials.key).toBe(demoAnswer.key);
}

describe("glibc executables", () => {
  for (const name of ["linux-x64", "linux-x64-baseline", "linux-arm64"]) {
    test(`${name} prints the package version, the commit and its platform`, async () => {
      const t = target(name);

      const { code, stdout } = await runToEnd([...runnerFor(t, executable(t)), "--version"]);

      expect(code).toBe(0);
      expect(stdout.trim()).toBe(await expectedVersionLine(t));
    });

    test(`${name} serves the demo device on run/external.sock to fetch and curl`, async () => {
      const t = target(name);

      await serveDemoAndAsk(runnerFor(t, executable(t)));
    });
  }

  // bun:ffi must work inside a compiled executable (and under qemu for arm64): it is how
  // extprov sends READY=1 to systemd.
  for (const name of ["linux-x64", "linux-arm64"]) {
    test(`${name} tells systemd it is ready through NOTIFY_SOCKET with bun:ffi`, async () => {
      const t = target(name);
      const cwd = tempDir();
      using listener = await notifyListener(
        cwd,
        join(cwd, "notify.sock"),
        join(cwd, "run", "external.sock"),
      );
      const command = runnerFor(t, executable(t));
      const env = { NOTIFY_SOCKET: listener.address };

      const server = await startServer({
        command,
        args: ["serve", "--demo"],
        cwd,
        env,
        secrets: [demoAnswer.key],
      });
      const ready = await listener.waitFor("READY");

      expect(ready.pid).toBe(server.process.pid!);
      expect(ready.socketAtPath).toMatchObject({ socket: true, mode: 0o600 });
      expect(await server.stop()).toBe(0);
      expect(Object.keys((await listener.drain()).at(-1)!.fields)).toContain("STOPPING");
    });
  }

  // Bun 1.4's x64 runtime targets Nehalem (SSE4.2) and picks AVX2 code at run time, so
  // the default build must run without AVX2; qemu's Nehalem model faults on AVX2 opcodes.
  for (const name of ["linux-x64", "linux-x64-baseline"]) {
    test(`${name} serves on an emulated Nehalem CPU, which has no AVX or AVX2`, async () => {
      const qemu = requireTool("qemu-x86_64-static");

      await serveDemoAndAsk([qemu, "-cpu", "Nehalem", executable(target(name))]);
    });
  }

  // The floor both x64 files share: without SSE4.2 neither starts.
  for (const name of ["linux-x64", "linux-x64-baseline"]) {
    test(`${name} stops on an emulated Core 2 CPU, which has no SSE4.2`, async () => {
      const qemu = requireTool("qemu-x86_64-static");
      const core2 = [qemu, "-cpu", "core2duo", executable(target(name))];

      const { code } = await runToEnd([...core2, "--version"]);

      expect(code).not.toBe(0);
    });
  }
});

describe("musl executables", () => {
  const interpreters = { x64: "/lib/ld-musl-x86_64.so.1", arm64: "/lib/ld-musl-aarch64.so.1" };
  const machines = { x64: "Advanced Micro Devices X86-64", arm64: "AArch64" };

  for (const name of ["linux-x64-musl", "linux-arm64-musl"]) {
    const t = target(name);

    test(`${name} is an ${t.arch} ELF that loads through musl and needs libstdc++`, async () => {
      const readelf = requireTool("readelf");
      const headers = ["--file-header", "--program-headers", "--dynamic"];

      const { code, stdout } = await runToEnd([readelf, ...headers, executable(t)]);

      expect(code).toBe(0);
      expect(stdout).toContain(`Machine:                           ${machines[t.arch]}`);
      expect(stdout).toContain(`[Requesting program interpreter: ${interpreters[t.arch]}]`);
      expect(stdout).toContain("Shared library: [libstdc++.so.6]");
    });

    // Known limit: Bun's musl runtime links libstdc++.so.6 built for musl (Alpine's
    // libstdc++ and libgcc packages); Debian ships none, so these builds are only inspected.
    const reason = "not run here, Debian has no musl libstdc++.so.6";
    test.skip(`${name} serving the demo: ${reason}`, () => {});
  }
});
