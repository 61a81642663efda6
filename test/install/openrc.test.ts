/**
 * The OpenRC script run by the real openrc-run and supervise-daemon (Debian's openrc
 * package, which .ci/run installs), on a copy whose paths point into a temporary folder:
 * start after `extprov check`, serve, reload on SIGHUP, start again after a crash, and
 * stop with the socket removed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { recordOutput, recordSecrets } from "../helpers/suite-record.ts";
import { sourceCommand } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";
import { projectRoot, read } from "./helpers.ts";

const openrcRun = "/usr/sbin/openrc-run";
/** openrc-run refuses to run a service on a system OpenRC did not boot without this file. */
const softlevel = "/run/openrc/softlevel";
const available = existsSync(openrcRun) && existsSync(softlevel) && process.geteuid?.() === 0;
const skipNote = available
  ? ""
  : " (skipped: needs root, openrc-run and /run/openrc/softlevel; .ci/run sets them up)";

const folder = tempDir();
const socket = join(folder, "sock", "external.sock");
const log = join(folder, "extprov.log");
const key = newSymmetricKey();
// Its own name, so that OpenRC's state for it is never that of a real extprov service.
const service = join(folder, `extprov-test-${process.pid}`);
const pidFile = join(folder, "extprov.pid");

/** The shipped script with every path moved into `folder`, and extprov run from source. */
function trialScript(config: string): string {
  const command = join(folder, "extprov");
  writeFileSync(command, `#!/bin/sh\nexec ${sourceCommand.join(" ")} "$@"\n`, { mode: 0o755 });

  return read(projectRoot, "build/init/extprov.openrc")
    .replace("command=/usr/bin/extprov", `command=${command}`)
    .replace("pidfile=/run/extprov-supervisor.pid", `pidfile=${join(folder, "supervisor.pid")}`)
    .replace("--pid-file /run/extprov.pid", `--pid-file ${pidFile}`)
    .replace("EXTPROV_CONFIG:=/etc/extprov/config.yaml", `EXTPROV_CONFIG:=${config}`)
    .replace("EXTPROV_SOCKET_DIR:=/var/run/external", `EXTPROV_SOCKET_DIR:=${join(folder, "sock")}`)
    .replace("EXTPROV_USER:=extprov", "EXTPROV_USER:=root")
    .replace("EXTPROV_LOG:=/var/log/extprov.log", `EXTPROV_LOG:=${log}`)
    .replace("respawn_delay=5", "respawn_delay=1");
}

function openrc(action: string): { code: number; output: string } {
  const result = Bun.spawnSync([openrcRun, service, action], { stdin: "ignore" });
  const output = result.stdout.toString() + result.stderr.toString();
  recordOutput(`openrc-run ${action}`, output);
  return { code: result.exitCode ?? -1, output };
}

/** extprov's pid, as supervise-daemon records it (the pid file holds the supervisor's). */
function extprovPid(): number {
  const recorded = join("/run/openrc/options", basename(service), "child_pid");
  return existsSync(recorded) ? Number(readFileSync(recorded, "utf8").trim()) : 0;
}

afterAll(() => {
  if (!available) return;
  openrc("stop");
  openrc("zap");
  recordOutput("extprov under openrc", existsSync(log) ? readFileSync(log, "utf8") : "");
});

describe("the OpenRC script", () => {
  test.skipIf(!available)(`refuses to start when extprov check fails${skipNote}`, () => {
    mkdirSync(join(folder, "bad"));
    const config = join(folder, "bad", "config.yaml");
    writeFileSync(config, "device: {}\n", { mode: 0o600 });
    writeFileSync(service, trialScript(config), { mode: 0o755 });

    const result = openrc("start");
    openrc("zap");

    expect(result.code).not.toBe(0);
    expect(result.output).toContain(`not started: fix ${config} (see above)`);
  });

  test.skipIf(!available)(
    `starts, serves, reloads, starts again after a crash and stops${skipNote}`,
    async () => {
      recordSecrets([key]);
      const config = writeConfig(folder, symmetricKeyConfig(socket, key));
      writeFileSync(service, trialScript(config), { mode: 0o755 });

      expect(openrc("start").code).toBe(0);
      expect((await waitForAnswer()).status).toBe(200);
      expect(openrc("status").output).toContain("status: started");

      expect(openrc("reload").code).toBe(0);
      await waitForLog("reloaded trigger=SIGHUP");

      // extprov's own pid file, as `extprov reload` reads it by default under OpenRC.
      const reload = Bun.spawnSync([...sourceCommand, "reload", "--pid-file", pidFile]);
      expect(reload.exitCode).toBe(0);
      await waitFor(
        () => readFileSync(log, "utf8").split("reloaded trigger").length === 3,
        "a second reload",
      );

      const first = extprovPid();
      expect(first).toBeGreaterThan(0);
      process.kill(first, "SIGKILL");
      await waitFor(() => ![0, first].includes(extprovPid()), "a new extprov");
      expect((await waitForAnswer()).status).toBe(200);

      expect(openrc("stop").code).toBe(0);
      expect(existsSync(socket)).toBe(false);
      expect(readFileSync(log, "utf8")).toContain("stopped endpoint=");
    },
    60_000,
  );
});

async function waitForAnswer(): Promise<Response> {
  let answer: Response | undefined;
  await waitFor(async () => {
    answer = await fetchUnix(socket, provisioningPath).catch(() => undefined);
    return answer?.status === 200;
  }, "an answer on the socket");
  return answer!;
}

function waitForLog(text: string): Promise<void> {
  return waitFor(() => existsSync(log) && readFileSync(log, "utf8").includes(text), text);
}

async function waitFor(ready: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await ready())) {
    if (performance.now() > deadline) throw new Error(`waited 20 s for ${what}`);
    await Bun.sleep(50);
  }
}
