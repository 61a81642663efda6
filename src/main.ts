#!/usr/bin/env bun
/**
 * extprov: wiring only. Arguments, then the command; every failure ends as one line on
 * stderr and a documented exit code, never a stack trace.
 */
import { parseArguments } from "./cli/args.ts";
import { helpText } from "./cli/help.ts";
import { versionLine } from "./cli/version.ts";
import { checkCommand } from "./commands/check.ts";
import { serveCommand } from "./commands/serve.ts";
import { describeError, ExitCode, ExtprovError } from "./errors.ts";
import { log } from "./log.ts";

async function main(argv: string[]): Promise<number> {
  const args = parseArguments(argv);
  log.configure({ level: args.logLevel, format: args.logFormat });

  switch (args.command) {
    case "help":
      process.stdout.write(helpText);
      return ExitCode.ok;
    case "version":
      process.stdout.write(versionLine() + "\n");
      return ExitCode.ok;
    case "check":
      return checkCommand(args.source, (text) => process.stdout.write(text + "\n"));
    case "serve":
      return serveCommand(args.source);
  }
}

function fail(error: unknown): number {
  const exitCode = error instanceof ExtprovError ? error.exitCode : ExitCode.failure;

  for (const line of describeError(error).split("\n")) {
    log.error("refused to start", { reason: line });
  }

  return exitCode;
}

// A log reader that goes away must not take the endpoint with it.
process.stderr.on?.("error", () => {});
process.stdout.on?.("error", () => {});

main(process.argv.slice(2))
  .catch(fail)
  .then((code) => process.exit(code));
