/**
 * Clients for the endpoint: fetch over the unix socket, curl, and raw bytes. Every error
 * answer's body goes into the run's record (suite-record.ts), to be searched for secrets.
 */
import { connect } from "node:net";
import { recordErrorBody } from "./suite-record.ts";

export const apiQuery = "api-version=2019-04-10";
export const provisioningPath = `/device/provisioninginformation?${apiQuery}`;

/** fetch over a Unix socket, as iotedged's HTTP client talks to it. */
export async function fetchUnix(
  socket: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const response = await fetch(`http://localhost${path}`, { ...init, unix: socket } as RequestInit);
  if (response.status >= 400)
    recordErrorBody(`fetch ${path.slice(0, 64)}`, await response.clone().text());
  return response;
}

/** curl --unix-socket; returns the exit code, the HTTP status and the body. */
export function curlUnix(
  socket: string,
  path: string,
  extra: string[] = [],
  wrapper: string[] = [],
) {
  const result = Bun.spawnSync([
    ...wrapper,
    "curl",
    "--silent",
    "--show-error",
    "--max-time",
    "10",
    "--unix-socket",
    socket,
    "--write-out",
    "\n%{http_code}",
    ...extra,
    `http://localhost${path}`,
  ]);

  const out = result.stdout.toString();
  const cut = out.lastIndexOf("\n");
  const status = Number(out.slice(cut + 1));
  const body = out.slice(0, Math.max(cut, 0));
  if (status >= 400) recordErrorBody(`curl ${path.slice(0, 64)}`, body);
  return { exitCode: result.exitCode, status, body, stderr: result.stderr.toString() };
}

/** Writes raw bytes to the socket and returns all that comes back until it closes. */
export function rawRequest(
  socket: string,
  bytes: string | Uint8Array,
  timeoutMs = 5_000,
): Promise<string> {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  const client = connect(socket);
  let answer = "";

  const timer = setTimeout(() => {
    client.destroy();
    resolve(answer);
  }, timeoutMs);
  client.on("connect", () => client.write(bytes));
  client.on("data", (chunk) => (answer += chunk.toString("latin1")));
  client.on("error", (error) => {
    clearTimeout(timer);
    reject(error);
  });
  client.on("close", () => {
    clearTimeout(timer);
    resolve(answer);
  });

  return promise.then((text) => {
    if (/^HTTP\/1\.[01] [45]/.test(text)) recordErrorBody("raw request", text);
    return text;
  });
}
