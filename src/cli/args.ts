/**
 * The command line: `extprov [serve|check|version] [options]`, parsed with node:util.
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import type { LogFormat, LogLevel } from "../log.ts";
import type { ConfigSource } from "../provisioning/load-state.ts";

export const commands = ["serve", "check", "version", "help"] as const;
export type Command = (typeof commands)[number];

export const defaultConfigPath = "/etc/extprov/config.yaml";

export interface Arguments {
  command: Command;
  source: ConfigSource;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

const options = {
  config: { type: "string", short: "c" },
  demo: { type: "boolean" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Parses `argv` (without the executable); throws `UsageError` with what to change. */
export function parseArguments(argv: string[]): Arguments {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify.*$/s, ""));
  }

  const { values, positionals } = parsed;
  const command = pickCommand(positionals, values);

  if (values.demo && values.config !== undefined) {
    throw new UsageError("--demo and --config exclude each other");
  }

  const source: ConfigSource = values.demo
    ? { kind: "demo" }
    : { kind: "file", path: values.config ?? defaultConfigPath };

  return {
    command,
    source,
    logLevel: oneOf("--log-level", values["log-level"] ?? "info", ["debug", "info", "warn", "error"]),
    logFormat: oneOf("--log-format", values["log-format"] ?? "text", ["text", "json"]),
  };
}

function pickCommand(positionals: string[], values: { help?: boolean; version?: boolean }): Command {
  if (values.help) return "help";
  if (values.version) return "version";
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);

  const command = positionals[0] ?? "serve";
  if (!(commands as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command ${command}`, `choose one of ${commands.join(", ")}`);
  }

  return command as Command;
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${option} takes one of ${allowed.join(", ")}`);
}
