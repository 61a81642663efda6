/**
 * Runs the reprovision hook: the configured argv without a shell, in a process group of
 * its own, with a minimal environment that names the device but holds no secret. Its
 * output is logged line by line through `sanitizeLine`. A hook that overruns its time
 * gets SIGTERM, and SIGKILL `killGraceSeconds` later, its whole process group with it;
 * what a hook leaves running in its group when it exits is killed.
 */
import { existsSync } from "node:fs";
import { log } from "../log.ts";
import { maxLoggedLines, readLines, sanitizeLine, secretPieces } from "./output.ts";

/** Seconds between SIGTERM and SIGKILL for a hook that is stopped. */
export const killGraceSeconds = 5;
/** What the hook finds in PATH: the system folders, never the caller's. */
export const hookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** How long to wait for output still in the pipes after the hook exited. */
const drainMilliseconds = 1_000;

export interface HookRequest {
  argv: string[];
  timeoutSeconds: number;
  /** The identity served when the hook starts, and the configuration file. */
  hubName: string;
  deviceId: string;
  configFile: string;
  /** Values the hook's output must never carry into the log. */
  secrets: string[];
  /** Aborted when extprov shuts down: the hook is stopped as on a timeout. */
  signal?: AbortSignal;
}

/** Why a hook did not succeed: it failed, overran its time, or extprov is shutting down. */
export type HookFailure = "failed" | "timeout" | "shutdown";

export type HookOutcome = { ok: true } | { ok: false; failure: HookFailure; reason: string };

/** Runs the hook to its end; never throws. */
export async function runHook(request: HookRequest): Promise<HookOutcome> {
  const program = request.argv[0]!;
  const started = performance.now();

  let child;
  try {
    child = Bun.spawn(request.argv, {
      cwd: "/",
      env: hookEnvironment(request),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      // setsid(): the hook and everything it starts can be stopped as one group.
      detached: true,
    });
  } catch (error) {
    const reason = `the reprovision hook ${program} could not be started (${startProblem(error, program)})`;
    log.error("hook failed", { hook: program, reason });
    return { ok: false, failure: "failed", reason };
  }

  log.info("hook started", { hook: program, pid: child.pid, seconds: request.timeoutSeconds });
  const output = outputLog(request.secrets);
  const streams = [
    readLines(child.stdout, (line) => output.line("stdout", line)),
    readLines(child.stderr, (line) => output.line("stderr", line)),
  ];

  const stopper = groupStopper(child.pid, program);
  const timer = setTimeout(() => stopper.stop("timeout"), request.timeoutSeconds * 1000);
  const onAbort = () => stopper.stop("shutdown");
  request.signal?.addEventListener("abort", onAbort, { once: true });
  if (request.signal?.aborted) onAbort();

  const code = await child.exited;
  clearTimeout(timer);
  request.signal?.removeEventListener("abort", onAbort);
  stopper.finish();

  // A child the hook left behind may still hold its output: take what is there, then stop.
  await Promise.race([
    Promise.all(streams.map((stream) => stream.done)),
    Bun.sleep(drainMilliseconds),
  ]);
  for (const stream of streams) stream.stop();
  output.finish();
  stopLeftovers(child.pid, program);

  const ms = Math.round(performance.now() - started);
  const signal = typeof child.signalCode === "string" ? child.signalCode : undefined;
  return outcome(program, request.timeoutSeconds, stopper.reason, code, signal, ms);
}

function outcome(
  program: string,
  timeoutSeconds: number,
  stoppedFor: "timeout" | "shutdown" | undefined,
  code: number,
  signal: string | undefined,
  ms: number,
): HookOutcome {
  if (stoppedFor === "timeout") {
    const reason = `the reprovision hook did not finish within ${timeoutSeconds} s and was stopped`;
    log.error("hook timed out", { hook: program, seconds: timeoutSeconds, signal, reason });
    return { ok: false, failure: "timeout", reason };
  }

  if (stoppedFor === "shutdown") {
    const reason = "the reprovision hook was stopped because extprov is shutting down";
    log.warn("hook stopped", { hook: program, signal, ms, reason });
    return { ok: false, failure: "shutdown", reason };
  }

  if (signal !== undefined || code !== 0) {
    const how = signal !== undefined ? `was killed by ${signal}` : `exited with code ${code}`;
    const reason = `the reprovision hook ${how}`;
    log.error("hook failed", {
      hook: program,
      code: signal === undefined ? code : undefined,
      signal,
      ms,
      reason,
    });
    return { ok: false, failure: "failed", reason };
  }

  log.info("hook finished", { hook: program, code, ms });
  return { ok: true };
}

function startProblem(error: unknown, program: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOEXEC") return "ENOEXEC: a script needs a #! line naming its interpreter";
  if (code === "ENOENT" && !existsSync(program)) {
    return "ENOENT: it is gone since extprov loaded it; put it back, then reload";
  }
  if (code === "ENOENT") return "ENOENT: the interpreter its #! line names does not exist";
  return code ?? (error as Error).message;
}

/** The whole environment the hook gets: who the device is, where the configuration is, PATH. */
export function hookEnvironment(
  request: Pick<HookRequest, "hubName" | "deviceId" | "configFile">,
): Record<string, string> {
  return {
    PATH: hookPath,
    EXTPROV_HUB_NAME: request.hubName,
    EXTPROV_DEVICE_ID: request.deviceId,
    EXTPROV_CONFIG: request.configFile,
  };
}

/**
 * SIGTERM to the hook's group, SIGKILL after the grace period; once the hook is gone,
 * SIGKILL to whatever it left behind.
 */
function groupStopper(pid: number, program: string) {
  let reason: "timeout" | "shutdown" | undefined;
  let killTimer: Timer | undefined;

  return {
    get reason() {
      return reason;
    },
    stop(why: "timeout" | "shutdown") {
      if (reason !== undefined) return;
      reason = why;
      signalGroup(pid, "SIGTERM");
      killTimer = setTimeout(() => {
        log.warn("hook killed", {
          hook: program,
          signal: "SIGKILL",
          reason: `it did not stop within ${killGraceSeconds} s of SIGTERM`,
        });
        signalGroup(pid, "SIGKILL");
      }, killGraceSeconds * 1000);
    },
    finish() {
      clearTimeout(killTimer);
      if (reason !== undefined) signalGroup(pid, "SIGKILL");
    },
  };
}

/**
 * A hook's work ends when it exits: a process it left running in its group (`cmd &`)
 * would go on with access to the credentials, unseen, until the service stops. It is
 * killed, and said so.
 */
function stopLeftovers(pid: number, program: string): void {
  try {
    process.kill(-pid, 0);
  } catch {
    return;
  }

  log.warn("hook left processes running", {
    hook: program,
    signal: "SIGKILL",
    reason: "a hook's work ends when it exits; start a service for work that must go on",
  });
  signalGroup(pid, "SIGKILL");
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Logs hook output lines up to `maxLoggedLines`, then counts the rest. */
function outputLog(secrets: string[]) {
  const pieces = secretPieces(secrets);
  let logged = 0;
  let dropped = 0;

  return {
    line(stream: "stdout" | "stderr", raw: string) {
      if (logged >= maxLoggedLines) {
        dropped++;
        return;
      }

      logged++;
      log.info("hook output", { stream, line: sanitizeLine(raw, pieces) });
    },
    finish() {
      if (dropped > 0) {
        log.warn("hook output truncated", {
          count: dropped,
          reason: `only the first ${maxLoggedLines} lines are logged`,
        });
      }
    },
  };
}
