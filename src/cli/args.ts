/**
 * The command line: `extprov [serve|check|reload|probe|version] [options]`, parsed with
 * node:util; options that a command does not take are refused, not ignored.
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import type { LogFormat, LogLevel } from "../log.ts";
import type { ConfigSource } from "../provisioning/load-state.ts";

export const commands = ["serve", "check", "reload", "probe", "version", "help"] as const;
export type Command = (typeof commands)[number];

export const defaultConfigPath = "/etc/extprov/config.yaml";
/** Where the SysV init script keeps the pid; `reload` looks there unless told otherwise. */
export const defaultPidFile = "/var/run/extprov.pid";

export interface Arguments {
  command: Command;
  source: ConfigSource;
  /** True when --config or --demo was given; `probe` then asks that endpoint. */
  sourceGiven: boolean;
  /** serve: write it (none by default); reload: read it. */
  pidFile?: string;
  /** probe: the endpoint to ask, as iotedged's provisioning.endpoint spells it. */
  endpoint?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** The options each command takes besides --log-level and --log-format. */
const commandOptions: Record<Command, readonly string[]> = {
  serve: ["config", "demo", "pid-file"],
  check: ["config", "demo"],
  reload: ["pid-file"],
  probe: ["config", "demo", "endpoint"],
  version: [],
  help: [],
};

const options = {
  config: { type: "string", short: "c" },
  demo: { type: "boolean" },
  "pid-file": { type: "string" },
  endpoint: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Parses `argv` (without the executable); throws `UsageError` with what to change. */
export function parseArguments(argv: string[]): Arguments {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError(oneLine((error as Error).message));
  }

  const { values, positionals, tokens } = parsed;
  checkEachGivenOnce(tokens);
  const command = pickCommand(positionals, values);

  checkOptionsFor(command, values);

  if (values.demo && values.config !== undefined) {
    throw new UsageError("--demo and --config exclude each other");
  }

  if (values.endpoint !== undefined && (values.demo || values.config !== undefined)) {
    throw new UsageError(
      "--endpoint and --config (or --demo) exclude each other",
      "probe asks --endpoint, or the endpoint the configuration names",
    );
  }

  const source: ConfigSource = values.demo
    ? { kind: "demo" }
    : { kind: "file", path: values.config ?? defaultConfigPath };

  return {
    command,
    source,
    sourceGiven: values.demo === true || values.config !== undefined,
    pidFile: values["pid-file"] ?? (command === "reload" ? defaultPidFile : undefined),
    endpoint: values.endpoint,
    logLevel: oneOf("--log-level", values["log-level"] ?? "info", [
      "debug",
      "info",
      "warn",
      "error",
    ]),
    logFormat: oneOf("--log-format", values["log-format"] ?? "text", ["text", "json"]),
  };
}

/**
 * The --log-format asked for, read before the rest of the line is parsed: a mistake
 * elsewhere on it is then reported in that format too, as a log collector parsing JSON
 * expects. Undefined when absent or not a format.
 */
export function requestedLogFormat(argv: string[]): LogFormat | undefined {
  let format: string | undefined;

  for (let i = 0; i < argv.length && argv[i] !== "--"; i++) {
    if (argv[i] === "--log-format") format = argv[i + 1];
    else if (argv[i]!.startsWith("--log-format=")) format = argv[i]!.slice("--log-format=".length);
  }

  return format === "text" || format === "json" ? format : undefined;
}

/**
 * node:util's message on one line, as every usage error is; without its advice on
 * arguments that start with a dash ("To specify ..."), which extprov never takes.
 */
function oneLine(message: string): string {
  return message.replace(/\.?\s*To specify .*$/s, "").replace(/\.?\s*\n\s*/g, "; ");
}

/**
 * node:util keeps the last of an option given twice: `-c a -c b` would silently serve b.
 * An empty value (`--config=`) would be the current folder.
 */
function checkEachGivenOnce(tokens: ReturnType<typeof parseArgs>["tokens"] = []): void {
  const seen = new Set<string>();

  for (const token of tokens) {
    if (token.kind !== "option") continue;
    if (seen.has(token.name)) {
      throw new UsageError(`--${token.name} is given more than once`, "give it once");
    }
    seen.add(token.name);
    if (token.value === "") throw new UsageError(`--${token.name} is given an empty value`);
  }
}

function pickCommand(
  positionals: string[],
  values: { help?: boolean; version?: boolean },
): Command {
  if (values.help) return "help";
  if (values.version) return "version";
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`);

  const command = positionals[0] ?? "serve";
  if (!(commands as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command ${command}`, `choose one of ${commands.join(", ")}`);
  }

  return command as Command;
}

function checkOptionsFor(command: Command, values: Record<string, unknown>): void {
  if (command === "help" || command === "version") return;

  const general = ["log-level", "log-format", "help", "version"];
  const allowed = new Set([...general, ...commandOptions[command]]);
  const refused = Object.keys(values).filter(
    (name) => values[name] !== undefined && !allowed.has(name),
  );

  if (refused.length > 0) {
    throw new UsageError(`${command} does not take --${refused[0]}`);
  }
}

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${option} takes one of ${allowed.join(", ")}`);
}
