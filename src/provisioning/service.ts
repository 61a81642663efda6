/**
 * Holds the state being served and makes every change to it: reloads and reprovisioning
 * run one at a time, and the state is swapped whole, so a request sees the old state or
 * the new one, never a mix. While a reprovision runs, provisioning requests wait for its
 * outcome; otherwise `current()` hands out the state directly.
 */
import { isDeepStrictEqual } from "node:util";
import type { Config } from "../config/load.ts";
import { describeError } from "../errors.ts";
import { runHook, type HookFailure } from "../hooks/run.ts";
import { log } from "../log.ts";
import type { Notifier } from "../system/notify.ts";
import { applyIdentityRules, sameIdentity } from "./identity-change.ts";
import type { LoadedState } from "./load-state.ts";
import { secretsOf, type ProvisioningState } from "./state.ts";

export interface ServiceOptions {
  /** Reads the configuration and every credential again; throws on any problem. */
  load: () => LoadedState;
  notifier?: Notifier;
}

/** Why a reprovision notice is answered with an error: the API's status and message. */
export interface ReprovisionFailure {
  status: 500 | 503;
  message: string;
}

const failureStatus: Record<HookFailure, 500 | 503> = { failed: 500, timeout: 503, shutdown: 503 };

export class ProvisioningService {
  #loaded: LoadedState;
  /** What the process was started with: its socket and user stay until it restarts. */
  readonly #startedWith: Config;
  #pending: Promise<ProvisioningState> | undefined;
  #reprovision: Promise<ReprovisionFailure | undefined> | undefined;
  #reloadQueued = false;
  readonly #shutdown = new AbortController();
  readonly #load: () => LoadedState;
  readonly #notifier: Notifier | undefined;

  constructor(initial: LoadedState, options: ServiceOptions) {
    this.#loaded = initial;
    this.#startedWith = initial.config;
    this.#load = options.load;
    this.#notifier = options.notifier;
  }

  /** The state to answer from: directly when idle, a promise while a reprovision runs. */
  current(): ProvisioningState | Promise<ProvisioningState> {
    return this.#pending ?? this.#loaded.state;
  }

  /** The configuration and state being served. */
  get loaded(): LoadedState {
    return this.#loaded;
  }

  /** Serves `next` from the next request on; at start, the state read as the service user. */
  swap(next: LoadedState): void {
    this.#loaded = next;
  }

  /** A reload asked for from outside (SIGHUP): now, or folded into a running reprovision. */
  requestReload(trigger: string): void {
    if (this.#reprovision) {
      // However many come, they make at most one reload: the one after the hook.
      log.info("reload queued", {
        trigger,
        reason: "a reprovision is running; it reloads when its hook is done",
      });
      this.#reloadQueued = true;
      return;
    }

    this.reload(trigger);
  }

  /** Reads everything again and swaps it in; on failure keeps serving and returns why. */
  reload(trigger: string): string | undefined {
    this.#reloadQueued = false;
    this.#notifyReloading();
    const previous = this.#loaded;

    let next: LoadedState;
    try {
      next = this.#load();
    } catch (error) {
      const reason = describeError(error);
      for (const line of reason.split("\n")) {
        log.error("reload failed, still serving the last good state", { trigger, reason: line });
      }
      this.#notifier?.send({
        READY: "1",
        STATUS: `reload failed; ${describeServing(previous.state)}`,
      });
      return reason;
    }

    const state = applyIdentityRules(previous.state, next);
    this.#loaded = { ...next, state };
    logLoaded(this.#loaded);
    logIdentityChange(previous.state, state);
    log.info("reloaded", { trigger, hub: state.info.hubName, device: state.info.deviceId });
    // Against the start, not the last reload: such a change waits for the restart.
    warnRestartOnly(this.#startedWith, next.config);
    this.#notifier?.send({ READY: "1", STATUS: describeServing(state) });
    return undefined;
  }

  /**
   * Answers iotedged's reprovision notice: runs the hook if one is configured, then
   * reloads. Resolves once the new state is served, to undefined, or to why it failed
   * (the last good state is kept). A notice while one runs joins it.
   */
  reprovision(): Promise<ReprovisionFailure | undefined> {
    if (this.#reprovision) {
      log.info("reprovision joined", {
        reason: "one is already running; this notice gets its outcome",
      });
      return this.#reprovision;
    }

    const waiting = Promise.withResolvers<ProvisioningState>();
    this.#pending = waiting.promise;

    this.#reprovision = this.#runReprovision().then((failure) => {
      // A SIGHUP during a failed hook still deserves its reload; a successful one did it.
      if (this.#reloadQueued) this.reload("SIGHUP during reprovision");

      this.#pending = undefined;
      this.#reprovision = undefined;
      waiting.resolve(this.#loaded.state);
      return failure;
    });

    return this.#reprovision;
  }

  /** At shutdown: stops a running hook and resolves once its notice has been answered. */
  async stopHook(): Promise<void> {
    this.#shutdown.abort();
    await this.#reprovision;
  }

  async #runReprovision(): Promise<ReprovisionFailure | undefined> {
    const { config, state } = this.#loaded;
    const { hubName, deviceId } = state.info;
    const kept = "extprov still serves the previous identity";
    const unchanged = "the identity was not changed";
    log.info("reprovision requested", {
      hub: hubName,
      device: deviceId,
      hook: config.reprovision.hook?.[0],
    });

    const hook = config.reprovision.hook;
    if (hook) {
      const outcome = await runHook({
        argv: hook,
        timeoutSeconds: config.reprovision.timeoutSeconds,
        hubName,
        deviceId,
        configFile: config.file,
        secrets: secretsOf(state.info),
        signal: this.#shutdown.signal,
      });

      if (!outcome.ok && outcome.failure === "shutdown") {
        // The listener is closed and the process is exiting: nothing is served any more.
        log.warn("reprovision stopped: extprov is shutting down", { reason: unchanged });
        return {
          status: 503,
          message: `reprovision stopped: extprov is shutting down; ${unchanged}`,
        };
      }

      if (!outcome.ok) {
        log.error("reprovision failed, still serving the last good state", {
          reason: outcome.reason,
        });
        return { status: failureStatus[outcome.failure], message: `${outcome.reason}; ${kept}` };
      }
    }

    const failure = this.reload("reprovision");
    if (failure !== undefined) {
      const what = hook
        ? "the reprovision hook succeeded, but the configuration it left cannot be loaded"
        : "the configuration cannot be loaded";
      log.error("reprovision failed, still serving the last good state", { reason: what });
      return { status: 500, message: `${what}: ${failure.split("\n")[0]}; ${kept}` };
    }

    const { info } = this.#loaded.state;
    log.info("reprovisioned", {
      hub: info.hubName,
      device: info.deviceId,
      provisioningStatus: info.status,
      substatus: info.substatus,
    });
    return undefined;
  }

  #notifyReloading(): void {
    if (!this.#notifier) return;

    const now = this.#notifier.monotonicMicroseconds();
    this.#notifier.send(
      now === undefined ? { RELOADING: "1" } : { RELOADING: "1", MONOTONIC_USEC: String(now) },
    );
  }
}

/** The identity and credential kind that were loaded, and any warnings about them. */
export function logLoaded({ state }: LoadedState): void {
  const { info } = state;
  log.info("loaded identity", {
    hub: info.hubName,
    device: info.deviceId,
    auth: info.credentials.authType,
    source: info.credentials.source,
  });

  for (const warning of state.warnings) log.warn("identity warning", { reason: warning });
}

/** What systemd's STATUS= shows: the identity being served. */
export function describeServing(state: ProvisioningState): string {
  return `serving ${state.info.deviceId} in ${state.info.hubName}`;
}

function logIdentityChange(previous: ProvisioningState, next: ProvisioningState): void {
  if (sameIdentity(previous.info, next.info)) return;

  log.info("identity changed", {
    previousHub: previous.info.hubName,
    previousDevice: previous.info.deviceId,
    hub: next.info.hubName,
    device: next.info.deviceId,
    provisioningStatus: next.info.status,
    substatus: next.info.substatus,
  });
}

/** Settings a running process cannot apply: it keeps its socket and its user. */
function warnRestartOnly(running: Config, next: Config): void {
  if (!isDeepStrictEqual(next.listen, running.listen)) {
    log.warn("listen settings changed", {
      reason: "the endpoint keeps its socket until extprov restarts",
    });
  }

  if (!isDeepStrictEqual(next.runAs, running.runAs)) {
    log.warn("runAs changed", { reason: "extprov keeps its user until it restarts" });
  }
}
