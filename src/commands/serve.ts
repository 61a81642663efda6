/**
 * `extprov serve`: load everything, open the endpoint, drop privileges, answer iotedged
 * until told to stop. SIGHUP reloads; a reload that fails keeps the last good state.
 */
import { isDeepStrictEqual } from "node:util";
import { createApp } from "../http/app.ts";
import { openEndpoint, prepareEndpoint, type Endpoint } from "../http/listen.ts";
import { describeError, ExitCode } from "../errors.ts";
import { log } from "../log.ts";
import { describeSource, loadState, type ConfigSource, type LoadedState } from "../provisioning/load-state.ts";
import { ProvisioningService } from "../provisioning/service.ts";
import { resolveSocketOwnership } from "../socket/ownership.ts";
import { dropPrivileges, needsDrop } from "../system/privileges.ts";
import { commit, version } from "../cli/version.ts";

/** Serves until SIGTERM or SIGINT; resolves to the exit code. */
export async function serveCommand(source: ConfigSource): Promise<number> {
  log.info("starting", { version, commit, pid: process.pid, file: describeSource(source) });
  const loaded = loadState(source);
  logLoaded(loaded);

  const service = new ProvisioningService(loaded.state);
  const endpoint = await open(source, loaded, service);
  log.info("serving", { endpoint: endpoint.describe, hub: loaded.state.info.hubName, device: loaded.state.info.deviceId });

  return waitForSignals(source, loaded, service, endpoint);
}

async function open(source: ConfigSource, loaded: LoadedState, service: ProvisioningService): Promise<Endpoint> {
  const { config } = loaded;
  const ownership = config.listen.kind === "unix" ? resolveSocketOwnership(config, loaded.service) : undefined;
  await prepareEndpoint(config);

  // From binding to the end of this function nothing awaits, so no request is read
  // before privileges are dropped and the credentials re-read as the service user.
  const endpoint = openEndpoint(config, createApp(service), ownership);
  try {
    if (needsDrop(loaded.service)) {
      dropPrivileges(loaded.service);
      service.swap(loadState(source).state);
    } else if (process.geteuid!() === 0) {
      log.warn("serving as root", { hint: "set runAs so extprov drops to its own user after binding" });
    }
  } catch (error) {
    await endpoint.close();
    throw error;
  }

  return endpoint;
}

function waitForSignals(
  source: ConfigSource,
  loaded: LoadedState,
  service: ProvisioningService,
  endpoint: Endpoint,
): Promise<number> {
  const { promise, resolve } = Promise.withResolvers<number>();

  const stop = async (signal: string) => {
    log.info("stopping", { signal });
    await endpoint.close();
    log.info("stopped", { endpoint: endpoint.describe });
    resolve(ExitCode.ok);
  };

  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => reload(source, loaded, service));

  return promise;
}

function reload(source: ConfigSource, running: LoadedState, service: ProvisioningService): void {
  let next: LoadedState;
  try {
    next = loadState(source);
  } catch (error) {
    log.error("reload failed, still serving the last good state", { reason: describeError(error) });
    return;
  }

  service.swap(next.state);
  logLoaded(next);
  log.info("reloaded", { hub: next.state.info.hubName, device: next.state.info.deviceId });

  if (!isDeepStrictEqual(next.config.listen, running.config.listen)) {
    log.warn("listen settings changed", { reason: "the endpoint keeps its socket until extprov restarts" });
  }
}

function logLoaded({ state }: LoadedState): void {
  const { info } = state;
  log.info("loaded identity", { hub: info.hubName, device: info.deviceId, auth: info.credentials.authType, source: info.credentials.source });

  for (const warning of state.warnings) log.warn("identity warning", { reason: warning });
}
