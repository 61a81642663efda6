/**
 * Opens the endpoint: a Unix socket with checked ownership, or a TCP port (loopback
 * unless explicitly allowed). The limits here bound what one client can make us hold.
 */
import type { Server } from "bun";
import type { Config } from "../config/load.ts";
import { ListenError } from "../errors.ts";
import { log } from "../log.ts";
import { bindUnixSocket, removeSocket, type BoundSocket, type SocketOwnership } from "../socket/bind.ts";
import { prepareSocketPath } from "../socket/path.ts";
import { watchSocket } from "../socket/watch.ts";
import { errorResponse, quoteRequestText } from "./errors.ts";
import { pathOf, withPlainOrigin, type App } from "./app.ts";

/** Requests carry no body; a reprovision notice is empty. */
export const maxRequestBodyBytes = 16 * 1024;
/** Seconds a connection may stay silent before it is closed (slow or stuck clients). */
export const idleTimeoutSeconds = 10;

export interface Endpoint {
  server: Server<undefined>;
  /** What to tell a person where we listen. */
  describe: string;
  /** Stops accepting, lets requests in flight finish, removes the socket. */
  close(): Promise<void>;
  /** Resolves with the reason if the socket file is removed or replaced; never for TCP. */
  lost: Promise<string>;
}

/** Makes sure the unix socket path can be bound; TCP needs no preparation. */
export async function prepareEndpoint(config: Config): Promise<void> {
  if (config.listen.kind === "unix") await prepareSocketPath(config.listen.path);
}

/** Binds synchronously, so nothing is served before the caller's next step. */
export function openEndpoint(config: Config, app: App, ownership?: SocketOwnership): Endpoint {
  const fetch = loggedHandler(app);

  if (config.listen.kind === "unix") {
    const socket = bindUnixSocket(config.listen.path, ownership!, (path) => serve({ unix: path }, fetch));
    return unixEndpoint(socket);
  }

  const { hostname, port, allowNonLoopback } = config.listen;
  if (!isLoopback(hostname)) {
    if (!allowNonLoopback) {
      throw new ListenError(`${hostname} is not a loopback address: other machines could ask for the device's credentials`, "listen on 127.0.0.1, or set listen.allowNonLoopback if the network is private to this device");
    }
    log.warn("listening beyond loopback", { endpoint: `${hostname}:${port}`, reason: "listen.allowNonLoopback is set" });
  }

  let server: Server<undefined>;
  try {
    server = serve({ hostname, port }, fetch);
  } catch (error) {
    throw new ListenError(`cannot listen on ${hostname}:${port}: ${(error as Error).message}`, "choose a free port");
  }

  return {
    server,
    describe: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`,
    close: () => server.stop(false),
    lost: new Promise<string>(() => {}),
  };
}

function unixEndpoint(socket: BoundSocket): Endpoint {
  return {
    server: socket.server,
    describe: `unix://${socket.path}`,
    close: async () => {
      await socket.server.stop(false);
      removeSocket(socket);
    },
    lost: watchSocket(socket),
  };
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

/** One log line per request: method, path, status, milliseconds. Never headers or query. */
function loggedHandler(app: App): Handler {
  return async (request) => {
    const started = performance.now();
    const response = await app.handle(withPlainOrigin(request));

    log.info("request", {
      method: quoteRequestText(request.method, 16),
      path: quoteRequestText(pathOf(request.url), 128),
      status: response.status,
      ms: Math.round((performance.now() - started) * 100) / 100,
    });

    return response;
  };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
