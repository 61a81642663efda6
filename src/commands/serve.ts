/**
 * `extprov serve`: load everything, open the endpoint, drop privileges, answer iotedged
 * until told to stop. SIGHUP reloads; a reload that fails keeps the last good state.
 * Under systemd (NOTIFY_SOCKET), READY=1 is sent only once the socket is served with its
 * checked ownership by the final user; STOPPING=1 when a stop signal comes.
 */
import { createApp } from "../http/app.ts";
import { openEndpoint, prepareEndpoint, type Endpoint } from "../http/listen.ts";
import { ExitCode } from "../errors.ts";
import { log } from "../log.ts";
import {
  describeSource,
  loadState,
  loadStateAsServiceUser,
  type ConfigSource,
} from "../provisioning/load-state.ts";
import { describeServing, logLoaded, ProvisioningService } from "../provisioning/service.ts";
import { resolveSocketOwnership } from "../socket/ownership.ts";
import { systemdNotifier } from "../system/notify.ts";
import { checkPidFile, removePidFile, writePidFile } from "../system/pid-file.ts";
import { dropPrivileges, needsDrop } from "../system/privileges.ts";
import { commit, version } from "../cli/version.ts";

export interface ServeOptions {
  /** Where to write the pid, for SysV init and `extprov reload`; none by default. */
  pidFile?: string;
}

/** Serves until SIGTERM or SIGINT; resolves to the exit code. */
export async function serveCommand(
  source: ConfigSource,
  options: ServeOptions = {},
): Promise<number> {
  // Listen for signals first, so one that comes during start-up is neither fatal nor lost.
  const stopSignal = stopSignals();
  const reloads = reloadSignals();
  const notifier = systemdNotifier();
  log.info("starting", { version, commit, pid: process.pid, file: describeSource(source) });

  const loaded = loadState(source);
  logLoaded(loaded);

  const service = new ProvisioningService(loaded, { load: () => loadState(source), notifier });
  const endpoint = await open(source, service, options.pidFile);
  const { info } = service.loaded.state;
  notifier.send({ READY: "1", STATUS: describeServing(service.loaded.state) });
  log.info("serving", { endpoint: endpoint.describe, hub: info.hubName, device: info.deviceId });
  reloads.deliverTo((trigger) => service.requestReload(trigger));

  const ended = await Promise.race([
    stopSignal.then((signal) => ({ signal })),
    endpoint.lost.then((lost) => ({ lost })),
  ]);
  if ("lost" in ended) return stopForLostSocket(endpoint, service, ended.lost, options.pidFile);

  const { signal } = ended;
  // The socket is gone and the listener closed before "stopping" is logged.
  const closed = endpoint.close(() => service.stopHook());
  log.info("stopping", { signal });
  notifier.send({ STOPPING: "1", STATUS: `stopping on ${signal}` });
  await closed;
  if (options.pidFile) removePidFile(options.pidFile);
  log.info("stopped", { endpoint: endpoint.describe });
  return ExitCode.ok;
}

/**
 * Nobody can connect to a socket whose file is gone, and a new one needs root to be given
 * its owner: exiting with 4 lets the service manager (Restart=on-failure) start afresh.
 * Whatever took the socket's place is left alone.
 */
async function stopForLostSocket(
  endpoint: Endpoint,
  service: ProvisioningService,
  reason: string,
  pidFile: string | undefined,
): Promise<number> {
  log.error("socket lost, stopping", {
    endpoint: endpoint.describe,
    reason,
    hint: "nobody can connect any more; starting extprov again binds a new socket",
  });
  await endpoint.close(() => service.stopHook());
  if (pidFile) removePidFile(pidFile);
  return ExitCode.listen;
}

/** The first stop signal; later ones are logged and ignored, as the stop is bounded anyway. */
function stopSignals(): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  let stopping = false;

  const onSignal = (signal: string) => {
    if (stopping) return log.info("already stopping", { signal });
    stopping = true;
    resolve(signal);
  };

  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  return promise;
}

/** SIGHUP before serving is remembered and acted on once serving starts. */
function reloadSignals() {
  let deliver: ((trigger: string) => void) | undefined;
  let missed = false;

  process.on("SIGHUP", () => {
    if (deliver) return deliver("SIGHUP");
    if (!missed) {
      log.info("reload queued", {
        trigger: "SIGHUP",
        reason: "extprov is still starting; it reloads once it serves",
      });
    }
    missed = true;
  });

  return {
    deliverTo(handler: (trigger: string) => void) {
      deliver = handler;
      if (missed) handler("SIGHUP during start-up");
    },
  };
}

async function open(
  source: ConfigSource,
  service: ProvisioningService,
  pidFile: string | undefined,
): Promise<Endpoint> {
  const loaded = service.loaded;
  const { config } = loaded;
  const ownership =
    config.listen.kind === "unix" ? resolveSocketOwnership(config, loaded.service) : undefined;
  if (pidFile) checkPidFile(pidFile);
  const folder = await prepareEndpoint(config, {
    trusted: [0, process.geteuid!(), loaded.service.uid],
    creator: loaded.service,
  });
  const unix = folder && ownership ? { folder, ownership } : undefined;

  // From binding to the end of this function nothing awaits, so no request is read
  // before privileges are dropped and the credentials re-read as the service user.
  const endpoint = openEndpoint(config, createApp(service), unix);
  try {
    // Written as root, before the drop: /var/run is root's.
    if (pidFile) writePidFile(pidFile);

    if (needsDrop(loaded.service)) {
      // Reloads are done as the service user: prove now that it can read everything.
      const asService = loadStateAsServiceUser(source, loaded.service);
      dropPrivileges(loaded.service);
      service.swap(asService);
    } else if (process.geteuid!() === 0) {
      log.warn("serving as root", {
        hint: "set runAs so extprov drops to its own user after binding",
      });
    }
  } catch (error) {
    await endpoint.close();
    if (pidFile) removePidFile(pidFile);
    throw error;
  }

  return endpoint;
}
