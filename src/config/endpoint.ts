/**
 * Endpoints as a person writes them: in `listen.endpoint` and in `probe --endpoint`.
 */

/**
 * A Unix socket address (struct sockaddr_un) holds 108 bytes of path, the last its
 * terminating NUL. Bun binds and connects longer paths through /proc/self/fd, but curl
 * and iotedged connect by the full path, which the kernel refuses.
 */
export const maxSocketPathBytes = 107;

/** Why no client could connect by `path`, or undefined when it fits. */
export function socketPathLengthProblem(
  path: string,
): { problem: string; hint: string } | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes <= maxSocketPathBytes) return undefined;

  return {
    problem: `the socket path is ${bytes} bytes, more than the ${maxSocketPathBytes} a Unix socket address holds (108 with its terminating NUL), so iotedged could not connect by it`,
    hint: "choose a shorter path, such as unix:///var/run/external/external.sock",
  };
}

export interface HttpAddress {
  /** An IPv6 address without its brackets. */
  hostname: string;
  port: number;
}

/** The host and port of a parsed http URL; undefined when `text` names no port. */
export function httpAddressOf(url: URL, text: string): HttpAddress | undefined {
  // The WHATWG parser drops a scheme's default port: `url.port` is "" for `http://h:80`
  // as for `http://h`, so the port the person typed is read from the text itself.
  const port = url.port === "" ? writtenPort(text) : Number(url.port);
  if (port === undefined) return undefined;

  return { hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"), port };
}

/** The digits after the host in a URL's text, if any. */
function writtenPort(text: string): number | undefined {
  const afterScheme = text.trim().replace(/^[a-z][a-z0-9+.-]*:[/\\]*/i, "");
  const authority = afterScheme.split(/[/\\?#]/, 1)[0]!;
  const hostAndPort = authority.slice(authority.lastIndexOf("@") + 1);

  const digits = /^(?:\[[^\]]*\]|[^:]*):(\d+)$/.exec(hostAndPort)?.[1];
  return digits === undefined ? undefined : Number(digits);
}

/** Whether only this machine can reach `hostname`: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** `http://host:port` for messages and logs; an IPv6 host in brackets, as URLs write it. */
export function describeHttpEndpoint({ hostname, port }: HttpAddress): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `http://${host}:${port}`;
}
