/**
 * The whole load, from configuration file to prepared answer: used at start, by `check`
 * and on every reload, so all three accept and refuse exactly the same things.
 */
import { loadConfig, resolveConfig, type Config } from "../config/load.ts";
import { loadIdentity } from "../credentials/load.ts";
import { checkHook } from "../hooks/check.ts";
import demoDocument from "../../examples/demo/config.yaml";
import { asServiceUser, resolveServiceIdentity, type Identity } from "../system/privileges.ts";
import { ConfigError, ConfigErrors } from "../errors.ts";
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

/**
 * The whole load again with the service user's effective ids, made as root before the
 * drop (serve) or in its stead (check): every reload runs as that user, so a file it
 * cannot read must stop the start, not the first reload. Each problem says whose reading
 * failed, and what the user can do about it.
 */
export function loadStateAsServiceUser(source: ConfigSource, service: Identity): LoadedState {
  try {
    return asServiceUser(service, () => loadState(source));
  } catch (error) {
    if (error instanceof ConfigError) throw asServiceUserProblem(error, service);
    if (!(error instanceof ConfigErrors)) throw error;
    throw new ConfigErrors(error.errors.map((problem) => asServiceUserProblem(problem, service)));
  }
}

function asServiceUserProblem(error: ConfigError, service: Identity): ConfigError {
  const who = `the service user ${service.name ?? ""} (uid ${service.uid})`.replace("  ", " ");
  const unreadable = /EACCES|cannot be read by this user/.test(error.problem);
  const hint = unreadable
    ? `let ${who} read it, as every reload does: give the file to group ${service.gid} with mode 0640, and let that group into the folders on its way`
    : error.hint;

  return new ConfigError(error.file, error.field, `${error.problem}, read as ${who}`, hint);
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
