/**
 * Asks an endpoint for the provisioning information exactly as iotedged 1.1 does
 * (external_provisioning_api.rs): GET with the api-version query and an empty body,
 * over a Unix socket or HTTP. Connection failures become one precise `ProbeError`.
 */
import { lstatSync } from "node:fs";
import { resolve } from "node:path";
import {
  describeHttpEndpoint,
  httpAddressOf,
  socketPathLengthProblem,
} from "../config/endpoint.ts";
import type { ListenConfig } from "../config/load.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { apiVersion } from "../http/schemas.ts";

/** iotedged waits without end; a person running probe should not. */
export const probeTimeoutSeconds = 10;
/** An answer is a few KiB even with a certificate chain; more is not read. */
const maxAnswerBytes = 1024 * 1024;
const path = `/device/provisioninginformation?api-version=${apiVersion}`;

export type Target =
  { kind: "unix"; path: string } | { kind: "tcp"; hostname: string; port: number };

export interface Answer {
  status: number;
  body: string;
  contentType: string | null;
  ms: number;
}

/** Parses an endpoint as iotedged's provisioning.endpoint spells it: unix:///path, http://host:port. */
export function parseEndpoint(endpoint: string, base = process.cwd()): Target {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(
      `--endpoint ${endpoint} is not a URL`,
      "write unix:///var/run/external/external.sock or http://127.0.0.1:9999",
    );
  }

  if (url.protocol === "unix:") {
    if (url.host !== "" || url.pathname === "" || url.pathname.endsWith("/")) {
      throw new UsageError(
        "a unix endpoint needs a socket path",
        "write three slashes: unix:///var/run/external/external.sock",
      );
    }
    return { kind: "unix", path: resolve(base, decodeURIComponent(url.pathname)) };
  }

  const address = url.protocol === "http:" ? httpAddressOf(url, endpoint) : undefined;
  if (address) return { kind: "tcp", ...address };

  throw new UsageError(
    `cannot probe ${endpoint}`,
    "iotedged takes unix:///path or http://host:port (with a port) for this endpoint",
  );
}

/** The endpoint a configuration listens on. */
export function targetOf(listen: ListenConfig): Target {
  return listen.kind === "unix"
    ? { kind: "unix", path: listen.path }
    : { kind: "tcp", hostname: listen.hostname, port: listen.port };
}

export function describeTarget(target: Target): string {
  return target.kind === "unix" ? `unix://${target.path}` : describeHttpEndpoint(target);
}

/** Sends iotedged's request and reads the answer; throws `ProbeError` when none comes. */
export async function ask(target: Target): Promise<Answer> {
  if (target.kind === "unix") checkSocketPath(target.path);

  const url =
    target.kind === "unix" ? `http://localhost${path}` : `${describeTarget(target)}${path}`;
  const init = {
    method: "GET",
    redirect: "manual",
    signal: AbortSignal.timeout(probeTimeoutSeconds * 1000),
    ...(target.kind === "unix" ? { unix: target.path } : {}),
  } as RequestInit;

  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw connectionError(target, error);
  }

  const bytes = await readBounded(response, target);
  return {
    status: response.status,
    body: new TextDecoder().decode(bytes),
    contentType: response.headers.get("content-type"),
    ms: Math.round(performance.now() - started),
  };
}

/** What is at the path, for a better message than the connection error alone. */
function checkSocketPath(socket: string): void {
  // Bun's fetch would connect through /proc/self/fd where iotedged cannot: refuse first.
  const tooLong = socketPathLengthProblem(socket);
  if (tooLong) throw new ProbeError(`${socket}: ${tooLong.problem}`, tooLong.hint);

  let stats;
  try {
    stats = lstatSync(socket);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ProbeError(
        `no socket at ${socket} (ENOENT)`,
        "is extprov running, and is this the path in iotedged's provisioning.endpoint?",
      );
    }
    if (code === "EACCES") {
      throw new ProbeError(
        `cannot reach ${socket} (EACCES): permission denied on a folder on the way`,
        "iotedged's user must be able to enter every folder on the way",
      );
    }
    throw new ProbeError(`cannot look at ${socket} (${code})`, "check the path in the endpoint");
  }

  if (!stats.isSocket()) {
    throw new ProbeError(
      `${socket} is not a socket`,
      "point the endpoint at the socket extprov listens on",
    );
  }
}

function connectionError(target: Target, error: unknown): ProbeError {
  const where = describeTarget(target);
  const code = (error as NodeJS.ErrnoException).code;
  const name = (error as Error).name;

  if (name === "TimeoutError") {
    return new ProbeError(
      `${where} did not answer within ${probeTimeoutSeconds} s`,
      "the endpoint accepts connections but does not answer; check its log",
    );
  }

  if (code === "EACCES" || code === "EPERM") {
    return new ProbeError(
      `permission denied connecting to ${where} (${code})`,
      "the user asking must own the socket or be in its group, with write permission (e.g. mode 0660 and group iotedge)",
    );
  }

  if (code === "ECONNREFUSED") {
    const hint =
      target.kind === "unix"
        ? "the socket is stale: no server accepts on it; start extprov, which replaces it"
        : "nothing listens there; start extprov";
    return new ProbeError(`connection refused by ${where} (ECONNREFUSED)`, hint);
  }

  if (code === "ENOENT" && target.kind === "unix") {
    return new ProbeError(`no socket at ${target.path} (ENOENT)`, "is extprov running?");
  }

  const reason = code ?? (error as Error).message;
  return new ProbeError(
    `cannot ask ${where}: the connection failed (${reason})`,
    "check that the endpoint serves HTTP",
  );
}

async function readBounded(response: Response, target: Target): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name;
    throw new ProbeError(`${describeTarget(target)} broke off its answer (${code})`);
  }

  if (bytes.length > maxAnswerBytes) {
    throw new ProbeError(
      `the answer is over ${maxAnswerBytes} bytes`,
      "a DeviceProvisioningInfo is a few KiB; check what the endpoint sends",
    );
  }

  return bytes;
}
