/**
 * Starts the real extprov process (from source, or a compiled executable) and talks to it
 * over its real socket. Every line it writes is kept, checked for secrets on stop, and
 * added to the run's record (suite-record.ts) for the check after the last file.
 */
import { expect } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { symmetricKeyConfig, writeConfig } from "./config.ts";
import { expectNoSecrets } from "./secrets.ts";
import { recordOutput, recordSecrets } from "./suite-record.ts";
import { tempDir } from "./temp.ts";

export const repoRoot = join(import.meta.dir, "..", "..");

const spawned = new Set<Subprocess>();

/**
 * Kills servers a failed test left running. Called once, after the last test file (from
 * test/preload.ts): a hook here would run at the end of whichever file imported this
 * module first, before that file's own afterAll had stopped its server.
 */
export function killStrayServers(): void {
  for (const child of spawned)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  spawned.clear();
}
export const sourceCommand = [process.execPath, join(repoRoot, "src", "main.ts")];

export interface RunningServer {
  process: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /**
   * Resolves when `text` has appeared `count` times (once by default); rejects if the
   * process exits first.
   */
  waitFor(text: string, timeoutMs?: number, count?: number): Promise<void>;
  /** How many times `text` appears in the output so far. */
  count(text: string): number;
  /** Sends SIGTERM and resolves to the exit code; checks the output for `secrets`. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export interface StartOptions {
  args: string[];
  cwd?: string;
  /** The command to run; extprov from source by default. */
  command?: string[];
  /** Prefix such as setpriv to run as another user. */
  wrapper?: string[];
  /** Values that must never appear in the output. */
  secrets?: string[];
  env?: Record<string, string>;
  /** What startServer waits for; the text log's "serving" line by default. */
  readyText?: string;
}

/** Starts extprov and waits until it logs that it serves (or exits). */
export async function startServer(options: StartOptions): Promise<RunningServer> {
  const server = spawnExtprov(options);
  await server.waitFor(options.readyText ?? " serving endpoint=");
  return server;
}

/** extprov from source serving a device with `key`, on a socket in a new temporary folder. */
export async function serveSymmetricKey(
  key: string,
): Promise<{ socket: string; server: RunningServer }> {
  const folder = tempDir();
  const socket = join(folder, "external.sock");
  const server = await startServer({
    args: ["serve", "--config", writeConfig(folder, symmetricKeyConfig(socket, key))],
    secrets: [key],
  });
  return { socket, server };
}

/** Starts extprov without waiting for anything. */
export function spawnExtprov(options: StartOptions): RunningServer {
  const command = [
    ...(options.wrapper ?? []),
    ...(options.command ?? sourceCommand),
    ...options.args,
  ];
  const child = Bun.spawn(command, {
    cwd: options.cwd,
    env: { ...process.env, JOURNAL_STREAM: "", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });

  spawned.add(child);
  let text = "";
  const waiters = new Set<() => void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += new TextDecoder().decode(chunk);
      for (const wake of waiters) wake();
    }
  };
  recordSecrets(options.secrets ?? []);
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]).then(() => {
    recordOutput(command.slice(-4).join(" "), text);
  });

  const count = (needle: string) => text.split(needle).length - 1;
  const waitFor = (needle: string, timeoutMs = 15_000, times = 1) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`timed out waiting for "${needle}"; output:\n${text}`)),
        timeoutMs,
      );
      const check = () => {
        if (count(needle) >= times) done();
      };
      const done = (error?: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        error ? reject(error) : resolve();
      };
      waiters.add(check);
      check();
      child.exited.then(async () => {
        await drained;
        if (count(needle) >= times) return done();
        done(
          new Error(`extprov exited with ${child.exitCode} before "${needle}"; output:\n${text}`),
        );
      });
    });

  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null) child.kill(signal);
    const code = await child.exited;
    await drained;
    expectNoSecrets(text, options.secrets ?? []);
    return code;
  };

  return { process: child, output: () => text, waitFor, count, stop };
}

/** Runs extprov to completion, e.g. `check` or a start that must fail. */
export async function runExtprov(options: StartOptions): Promise<{ code: number; output: string }> {
  const server = spawnExtprov(options);
  const timer = setTimeout(() => server.process.kill("SIGKILL"), runExitMs);
  const code = await server.process.exited;
  clearTimeout(timer);
  await server.stop();

  // A command expected to end that serves instead fails here, not at the test's timeout.
  if (server.process.signalCode === "SIGKILL") {
    throw new Error(`extprov did not exit within ${runExitMs} ms; output:\n${server.output()}`);
  }
  return { code, output: server.output() };
}

/** How long runExtprov lets a command run. */
const runExitMs = 30_000;

/** Asserts an answer is the API's JSON error with `status`, and returns its message. */
export async function expectErrorResponse(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toStartWith("application/json");

  const body = (await response.json()) as { message?: unknown };
  expect(Object.keys(body)).toEqual(["message"]);
  expect(typeof body.message).toBe("string");
  return body.message as string;
}
