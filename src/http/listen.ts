/**
 * Opens the endpoint: a Unix socket with checked ownership, or a TCP port (loopback
 * unless explicitly allowed). The limits here bound what one client can make us hold.
 */
import type { Server } from "bun";
import { describeHttpEndpoint, isLoopback } from "../config/endpoint.ts";
import type { Config } from "../config/load.ts";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import {
  bindUnixSocket,
  removeSocket,
  type BoundSocket,
  type SocketOwnership,
} from "../socket/bind.ts";
import { prepareSocketPath, type SocketFolder, type SocketFolderOwners } from "../socket/path.ts";
import { watchSocket } from "../socket/watch.ts";
import { errorResponse } from "./errors.ts";
import { pathOf, refuseBeforeRouting, withPlainOrigin, type App } from "./app.ts";
import { RequestLog } from "./request-log.ts";

/** Requests carry no body; a reprovision notice is empty. */
export const maxRequestBodyBytes = 16 * 1024;
/** Seconds a connection may stay silent before it is closed (slow or stuck clients). */
export const idleTimeoutSeconds = 10;
/** Seconds requests in flight get to finish after SIGTERM before they are cut off. */
export const shutdownGraceSeconds = 5;

export interface Endpoint {
  server: Server<undefined>;
  /** What to tell a person where we listen. */
  describe: string;
  /**
   * Stops accepting, lets requests in flight finish for up to `shutdownGraceSeconds`,
   * then calls `overdue` (which stops what they wait for) and closes the rest; removes
   * the socket.
   */
  close(overdue?: () => Promise<void>): Promise<void>;
  /** Resolves with the reason if the socket file is removed or replaced; never for TCP. */
  lost: Promise<string>;
}

/**
 * Makes sure the unix socket path can be bound, on a way only trusted users can change;
 * TCP needs no preparation.
 */
export async function prepareEndpoint(
  config: Config,
  owners: SocketFolderOwners,
): Promise<SocketFolder | undefined> {
  if (config.listen.kind !== "unix") return undefined;
  return prepareSocketPath(config.listen.path, owners);
}

/** Binds synchronously, so nothing is served before the caller's next step. */
export function openEndpoint(
  config: Config,
  app: App,
  unix?: { folder: SocketFolder; ownership: SocketOwnership },
): Endpoint {
  const requests = new RequestLog();
  const fetch = loggedHandler(app, requests);

  if (config.listen.kind === "unix") {
    const socket = bindUnixSocket(config.listen.path, unix!.folder, unix!.ownership, (path) =>
      serve({ unix: path }, fetch),
    );
    return unixEndpoint(socket, requests);
  }

  const { hostname, port } = config.listen;
  warnBeyondLoopback(config.listen);

  let server: Server<undefined>;
  try {
    server = serve({ hostname, port }, fetch);
  } catch (error) {
    throw new ListenError(
      `cannot listen on ${describeHttpEndpoint({ hostname, port })}: ${(error as Error).message}`,
      "choose a free port",
    );
  }

  return {
    server,
    describe: describeHttpEndpoint({ hostname, port: server.port ?? port }),
    close: (overdue) => drain(server, overdue).finally(() => requests.flush()),
    lost: new Promise<string>(() => {}),
  };
}

function unixEndpoint(socket: BoundSocket, requests: RequestLog): Endpoint {
  return {
    server: socket.server,
    describe: `unix://${socket.path}`,
    close: async (overdue) => {
      // Unlinked first: a new client finds no socket, instead of one the server resets.
      removeSocket(socket);
      await drain(socket.server, overdue).finally(() => requests.flush());
    },
    lost: watchSocket(socket),
  };
}

/**
 * Closes the listener at once, and the connections once their requests are answered,
 * bounded. A connection with no request in flight (idle, or one whose client never
 * finished sending its headers) holds no work and is closed at once: waiting on it for
 * the grace period would only delay the stop.
 */
async function drain(server: Server<undefined>, overdue?: () => Promise<void>): Promise<void> {
  const stopped = server.stop(false);

  if (!(await requestsAnswered(server, shutdownGraceSeconds * 1000))) {
    log.warn("requests still running at shutdown", {
      count: server.pendingRequests,
      reason: `closing them ${shutdownGraceSeconds} s after the stop signal`,
    });
    await overdue?.();

    // Give the answers just made a moment to be written before the connections go.
    await requestsAnswered(server, 1_000);
  }

  await server.stop(true);
  await stopped;
}

/** Milliseconds between two looks at the requests in flight while stopping. */
const drainPollMilliseconds = 10;

/**
 * Whether every request Bun has handed to the handler is answered within `milliseconds`.
 * Bun counts them (`pendingRequests`, until the answer is written) but has no event for
 * the count reaching zero, so it is looked at again until then: during shutdown only.
 */
async function requestsAnswered(server: Server<undefined>, milliseconds: number): Promise<boolean> {
  const deadline = performance.now() + milliseconds;

  while (server.pendingRequests > 0) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(drainPollMilliseconds);
  }

  return true;
}

type Handler = (request: Request) => Response | Promise<Response>;

type Address = { unix: string } | { hostname: string; port: number };

function serve(address: Address, fetch: Handler): Server<undefined> {
  const error = (failure: Error) => {
    log.error("request failed", { reason: failure.message });
    return errorResponse(500, "the endpoint could not answer this request");
  };
  const common = { fetch, error, maxRequestBodySize: maxRequestBodyBytes, development: false };

  if ("unix" in address) {
    // @ts-expect-error bun-types declares idleTimeout for TCP only, but Bun applies it to a
    // unix listener too (test/http/slow-clients.test.ts proves it at run time).
    return Bun.serve({ ...common, unix: address.unix, idleTimeout: idleTimeoutSeconds });
  }
  return Bun.serve({ ...common, ...address, idleTimeout: idleTimeoutSeconds });
}

/** Logs each request: method, path, status, milliseconds. Never headers or query. */
function loggedHandler(app: App, requests: RequestLog): Handler {
  const logged = (request: Request, response: Response, started: number) => {
    const ms = performance.now() - started;
    requests.record(request.method, pathOf(request.url), response.status, ms);
    return response;
  };

  return (request) => {
    const started = performance.now();

    // app.fetch answers most requests without a promise; awaiting only when it returns
    // one keeps the usual answer off the microtask queue, and no closure is made for it.
    const answer = refuseBeforeRouting(request) ?? app.fetch(withPlainOrigin(request));
    if (answer instanceof Promise) {
      return answer.then((response: Response) => logged(request, response, started));
    }
    return logged(request, answer, started);
  };
}

/**
 * An address beyond loopback is refused with the configuration unless allowed; allowed,
 * it is still worth a line in every start's log. `check` says the same.
 */
export function warnBeyondLoopback(listen: { hostname: string; port: number }): void {
  if (isLoopback(listen.hostname)) return;

  log.warn("listening beyond loopback", {
    endpoint: describeHttpEndpoint(listen),
    reason: "listen.allowNonLoopback is set",
  });
}
