#!/usr/bin/env bun
/**
 * extprov: wiring only. Arguments, then the command; every failure ends as one line on
 * stderr and a documented exit code, never a stack trace.
 */
import { parseArguments, requestedLogFormat, type Command } from "./cli/args.ts";
import { helpText } from "./cli/help.ts";
import { writeOutput } from "./cli/output.ts";
import { versionLine } from "./cli/version.ts";
import { checkCommand } from "./commands/check.ts";
import { probeCommand } from "./commands/probe.ts";
import { reloadCommand } from "./commands/reload.ts";
import { serveCommand } from "./commands/serve.ts";
import { describeError, ExitCode, ExtprovError, UsageError } from "./errors.ts";
import { log } from "./log.ts";

let command: Command | undefined;

async function main(argv: string[]): Promise<number> {
  // Read first, so that a mistake anywhere on the line is logged in the format asked for.
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

main(process.argv.slice(2))
  .catch(fail)
  .then((code) => process.exit(code));
