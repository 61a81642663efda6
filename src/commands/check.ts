/**
 * `extprov check`: everything `serve` validates, without opening the endpoint; prints
 * what would be served with every secret masked.
 */
import { describeHttpEndpoint } from "../config/endpoint.ts";
import type { Config } from "../config/load.ts";
import { ExitCode } from "../errors.ts";
import {
  loadState,
  loadStateAsServiceUser,
  type ConfigSource,
} from "../provisioning/load-state.ts";
import { needsDrop } from "../system/privileges.ts";
import { maskedInfo } from "../provisioning/state.ts";
import { resolveSocketOwnership } from "../socket/ownership.ts";
import { checkSocketPath } from "../socket/path.ts";
import { warnBeyondLoopback } from "../http/listen.ts";

export async function checkCommand(
  source: ConfigSource,
  print: (text: string) => void,
): Promise<number> {
  const { config, service, state } = loadState(source);
  // serve reads everything once more as the service user before it drops to it.
  if (process.geteuid!() === 0 && needsDrop(service)) loadStateAsServiceUser(source, service);

  // What serve refuses before binding, check refuses too; a live socket at the path may
  // be this extprov's own.
  if (config.listen.kind === "unix") {
    resolveSocketOwnership(config, service);
    await checkSocketPath(config.listen.path, [0, process.geteuid!(), service.uid]);
  } else {
    warnBeyondLoopback(config.listen);
  }

  print(`configuration ${config.file} is valid`);
  print(`endpoint: ${describeListen(config.listen)}`);
  print(`reprovision: ${describeReprovision(config.reprovision)}`);
  print("would serve:");
  print(JSON.stringify(maskedInfo(state.info), null, 2));

  for (const warning of state.warnings) print(`warning: ${warning}`);
  return ExitCode.ok;
}

function describeReprovision({ hook, timeoutSeconds }: Config["reprovision"]): string {
  // Only the program: its arguments are the operator's and might carry anything.
  if (!hook) return "no hook; a notice reloads";
  const count = hook.length - 1;
  const args = `${count} argument${count === 1 ? "" : "s"}`;
  return `hook ${hook[0]} (${args}, stopped after ${timeoutSeconds} s), then a reload`;
}

function describeListen(listen: Config["listen"]): string {
  if (listen.kind === "tcp") return describeHttpEndpoint(listen);

  const owner = listen.owner ?? "(service user)";
  const group = listen.group ?? "(service group)";
  const mode = listen.mode.toString(8).padStart(4, "0");
  return `unix://${listen.path} owner ${owner} group ${group} mode ${mode}`;
}
