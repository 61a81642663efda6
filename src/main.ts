#!/usr/bin/env bun
/**
 * extprov: wiring only. Arguments, then the command; every failure ends as one line on
 * stderr and a documented exit code, never a stack trace.
 */
import { parseArguments, requestedLogFormat, type Command } from "./cli/args.ts";
import { helpText } from "./cli/help.ts";
import { versionLine } from "./cli/version.ts";
import { checkCommand } from "./commands/check.ts";
import { probeCommand } from "./commands/probe.ts";
import { reloadCommand } from "./commands/reload.ts";
import { serveCommand } from "./commands/serve.ts";
import { writeSync } from "node:fs";
import { describeError, ExitCode, ExtprovError, UsageError } from "./errors.ts";
import { log } from "./log.ts";

let command: Command | undefined;

async function main(argv: string[]): Promise<number> {
  log.configure({ format: requestedLogFormat(argv) ?? "text" });
  const args = parseArguments(argv);
  log.configure({ level: args.logLevel, format: args.logFormat });
  command = args.command;
  const print = (text: string) => writeOutput(text + "\n");

  switch (args.command) {
    case "help":
      writeOutput(helpText);
      return ExitCode.ok;
    case "version":
      print(versionLine());
      return ExitCode.ok;
    case "check":
      return checkCommand(args.source, print);
    case "reload":
      return reloadCommand(args.pidFile!, print);
    case "probe":
      return probeCommand(
        { endpoint: args.endpoint, source: args.sourceGiven ? args.source : undefined },
        print,
      );
    case "serve":
      return serveCommand(args.source, { pidFile: args.pidFile });
  }
}

function fail(error: unknown): number {
  const exitCode = error instanceof ExtprovError ? error.exitCode : ExitCode.failure;
  const event = failureEvent(error);

  for (const line of describeError(error).split("\n")) {
    log.error(event, { reason: line });
  }

  return exitCode;
}

/**
 * A mistake on the command line is a usage error whatever the command; only serve starts
 * anything, so only serve is "refused to start".
 */
function failureEvent(error: unknown): string {
  if (error instanceof UsageError) return "usage error";
  if (command === undefined || command === "serve") return "refused to start";
  return `${command} failed`;
}

/**
 * Writes to stdout whole, or fails the command with exit 1: a report lost to a full disk
 * or to a reader that went away must not pass as done. Synchronous, and without
 * process.stdout, whose stream modules (about 1 MiB) `serve` has no use for; the log goes
 * to stderr through Bun's own writer (log.ts).
 */
function writeOutput(text: string): void {
  let rest = Buffer.from(text);

  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(1, rest));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A stdout another program made non-blocking takes the rest a moment later.
      if (code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      throw new ExtprovError(
        `cannot write the output to stdout (${code ?? "error"})`,
        ExitCode.failure,
        "check that its file system is not full and that what reads it is still there",
      );
    }
  }
}

main(process.argv.slice(2))
  .catch(fail)
  .then((code) => process.exit(code));
