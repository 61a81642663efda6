/**
 * The load generator, run as its own process so it does not share an event loop with the
 * server: N connections, each sending the next request as soon as the previous answer is
 * complete (keep-alive), or one new connection per request, as iotedged does at boot.
 *
 *   bun bench/load.ts SOCKET CONNECTIONS MILLISECONDS keepalive|new
 *
 * Prints one JSON line: requests, failures, seconds, p50 and p99 in milliseconds.
 */
import type { Socket } from "bun";

const [socketPath, connectionsText, durationText, mode] = process.argv.slice(2);
const connections = Number(connectionsText);
const durationMs = Number(durationText);
const keepAlive = mode !== "new";

const request = new TextEncoder().encode(
  "GET /device/provisioninginformation?api-version=2019-04-10 HTTP/1.1\r\n" +
    `Host: localhost\r\n${keepAlive ? "" : "Connection: close\r\n"}\r\n`,
);

const latencies: number[] = [];
let failures = 0;
const started = performance.now();
const deadline = started + durationMs;

interface Exchange {
  buffer: string;
  sentAt: number;
  done: () => void;
}

/** Length of a complete response at the start of `text`, or 0 if more must come. */
function completeLength(text: string): number {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return 0;

  const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
  return text.length >= end + 4 + length ? end + 4 + length : 0;
}

function finish(exchange: Exchange, length: number): void {
  const answer = exchange.buffer.slice(0, length);
  exchange.buffer = exchange.buffer.slice(length);
  if (answer.startsWith("HTTP/1.1 200")) latencies.push(performance.now() - exchange.sentAt);
  else failures++;
  exchange.done();
}

function connect(exchange: Exchange): Promise<Socket<Exchange>> {
  return Bun.connect<Exchange>({
    unix: socketPath!,
    data: exchange,
    socket: {
      data(socket, chunk) {
        socket.data.buffer += chunk.toString("latin1");
        const length = completeLength(socket.data.buffer);
        if (length > 0) finish(socket.data, length);
      },
      error(socket) {
        failures++;
        socket.data.done();
      },
    },
  });
}

async function keepAliveLoop(): Promise<void> {
  const exchange: Exchange = { buffer: "", sentAt: 0, done: () => {} };
  const socket = await connect(exchange);

  while (performance.now() < deadline) {
    const { promise, resolve } = Promise.withResolvers<void>();
    exchange.done = resolve;
    exchange.sentAt = performance.now();
    socket.write(request);
    await promise;
  }

  socket.end();
}

async function newConnectionLoop(): Promise<void> {
  while (performance.now() < deadline) {
    const { promise, resolve } = Promise.withResolvers<void>();
    const exchange: Exchange = { buffer: "", sentAt: performance.now(), done: resolve };

    try {
      const socket = await connect(exchange);
      socket.write(request);
      await promise;
      socket.end();
    } catch {
      failures++;
    }
  }
}

function percentile(sorted: number[], fraction: number): number {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

const loops = Array.from({ length: connections }, () =>
  keepAlive ? keepAliveLoop() : newConnectionLoop(),
);
await Promise.all(loops);

const seconds = (performance.now() - started) / 1000;
const sorted = latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    requests: latencies.length,
    failures,
    seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
  }),
);
process.exit(0);
