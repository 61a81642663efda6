/**
 * The whole load, from configuration file to prepared answer: used at start, by `check`
 * and on every reload, so all three accept and refuse exactly the same things.
 */
import { loadConfig, resolveConfig, type Config } from "../config/load.ts";
import { loadIdentity } from "../credentials/load.ts";
import { checkHook } from "../hooks/check.ts";
import demoDocument from "../../examples/demo/config.yaml";
import { resolveServiceIdentity, type Identity } from "../system/privileges.ts";
import { prepareState, type ProvisioningState } from "./state.ts";

/** A configuration file, or the demo built into the executable. */
export type ConfigSource = { kind: "file"; path: string } | { kind: "demo" };

export interface LoadedState {
  config: Config;
  service: Identity;
  state: ProvisioningState;
}

/**
 * Reads the configuration and every credential it names; throws `ConfigErrors` with every
 * problem of the configuration file, or with the first a credential file has.
 */
export function loadState(source: ConfigSource): LoadedState {
  const config = loadConfigFrom(source);
  const service = resolveServiceIdentity(config);
  const trustedOwners = [0, process.geteuid!(), service.uid];
  const state = prepareState(loadIdentity(config, trustedOwners));
  checkHook(config, trustedOwners);

  return { config, service, state };
}

/** The configuration alone, credentials unread: for `probe`, which only needs the endpoint. */
export function loadConfigFrom(source: ConfigSource): Config {
  if (source.kind === "file") return loadConfig(source.path);
  return {
    ...resolveConfig("<built-in demo>", structuredClone(demoDocument), process.cwd()),
    embedded: true,
  };
}

export function describeSource(source: ConfigSource): string {
  return source.kind === "file" ? source.path : "<built-in demo>";
}
