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
import { asServiceUser, dropPrivileges, needsDrop } from "../system/privileges.ts";
import { commit, version } from "../cli/version.ts";

/** Serves until SIGTERM or SIGINT; resolves to the exit code. */
export async function serveCommand(source: ConfigSource): Promise<number> {
  // Listen for stop signals first, so one that comes during start-up is not fatal.
  const stopSignal = stopSignals();
  log.info("starting", { version, commit, pid: process.pid, file: describeSource(source) });

  const loaded = loadState(source);
  logLoaded(loaded);

  const service = new ProvisioningService(loaded.state);
  const endpoint = await open(source, loaded, service);
  process.on("SIGHUP", () => reload(source, loaded, service));
  log.info("serving", { endpoint: endpoint.describe, hub: loaded.state.info.hubName, device: loaded.state.info.deviceId });

  const ended = await Promise.race([
    stopSignal.then((signal) => ({ signal })),
    endpoint.lost.then((lost) => ({ lost })),
  ]);
  if ("lost" in ended) return stopForLostSocket(endpoint, ended.lost);

  log.info("stopping", { signal: ended.signal });
  await endpoint.close();
  log.info("stopped", { endpoint: endpoint.describe });
  return ExitCode.ok;
}

/**
 * Nobody can connect to a socket whose file is gone, and a new one needs root to be given
 * its owner: exiting with 4 lets the service manager (Restart=on-failure) start afresh.
 * Whatever took the socket's place is left alone.
 */
async function stopForLostSocket(endpoint: Endpoint, reason: string): Promise<number> {
  log.error("socket lost, stopping", {
    endpoint: endpoint.describe,
    reason,
    hint: "nobody can connect any more; starting extprov again binds a new socket",
  });
  await endpoint.close();
  return ExitCode.listen;
}

function stopSignals(): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();

  process.once("SIGTERM", () => resolve("SIGTERM"));
  process.once("SIGINT", () => resolve("SIGINT"));
  return promise;
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
      // Reloads are done as the service user: prove now that it can read everything.
      const asService = asServiceUser(loaded.service, () => loadState(source).state);
      dropPrivileges(loaded.service);
      service.swap(asService);
    } else if (process.geteuid!() === 0) {
      log.warn("serving as root", { hint: "set runAs so extprov drops to its own user after binding" });
    }
  } catch (error) {
    await endpoint.close();
    throw error;
  }

  return endpoint;
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
