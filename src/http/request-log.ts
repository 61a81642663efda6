/**
 * The per-request log line, bounded. iotedged asks a handful of times per start, and each
 * of those requests gets its own line. A client that floods the socket would otherwise
 * write tens of thousands of lines a second to the device's flash, and journald's rate
 * limit (by default 10,000 lines per 30 s per service) would then drop lines of the whole
 * service, reloads and errors among them.
 *
 * So each second logs its first `burst` requests one by one; the rest are counted, and
 * the second ends with one summary line per method, path and status: how many, and the
 * slowest. Every request is in the log, as a line of its own or in a count.
 */
import { log, type Logger } from "../log.ts";
import { quoteRequestText } from "./errors.ts";

export interface RequestLogOptions {
  /** Requests logged one by one per window before counting starts. */
  burst: number;
  windowMs: number;
  /** Kinds of request (method, path, status) counted apart in one window; the rest share one. */
  maxKinds: number;
  logger: Logger;
  now: () => number;
  /** Runs `flush` once the window has ended, for a flood that stops mid-window. */
  schedule: (flush: () => void, ms: number) => void;
}

interface Tally {
  method: string;
  path: string;
  status: number;
  count: number;
  slowestMs: number;
}

/** The key under which kinds beyond `maxKinds` are counted together. */
const otherKinds = "";

export class RequestLog {
  readonly #options: RequestLogOptions;
  #windowEnds = -Infinity;
  #linesLeft = 0;
  #tallies = new Map<string, Tally>();
  /** The tally counted last: in a flood, the next request is almost always of its kind. */
  #lastTally: Tally | undefined;
  #flushScheduled = false;

  constructor(options: Partial<RequestLogOptions> = {}) {
    this.#options = {
      burst: 20,
      windowMs: 1000,
      maxKinds: 16,
      logger: log,
      // Monotonic: a device whose clock is set back at boot (NTP after a wrong RTC) must
      // not be left in a window that ends years from now.
      now: () => performance.now(),
      schedule: (flush, ms) => setTimeout(flush, ms).unref(),
      ...options,
    };
  }

  /** One answered request; `path` without its query, as the client sent it. */
  record(method: string, path: string, status: number, ms: number): void {
    const now = this.#options.now();
    if (now >= this.#windowEnds) this.#startWindow(now);

    if (this.#linesLeft > 0) {
      this.#linesLeft--;
      this.#options.logger.request(
        quoteRequestText(method, 16),
        quoteRequestText(path, 128),
        status,
        roundMs(ms),
      );
      return;
    }

    this.#count(method, path, status, ms);
  }

  /** Writes the counts of the window so far; at window end and before the process stops. */
  flush(): void {
    const tallies = this.#tallies;
    if (tallies.size === 0) return;

    this.#tallies = new Map();
    this.#lastTally = undefined;
    for (const [key, tally] of tallies) this.#summarize(tally, key === otherKinds);
  }

  #startWindow(now: number): void {
    this.flush();
    this.#windowEnds = now + this.#options.windowMs;
    this.#linesLeft = this.#options.burst;
  }

  #count(method: string, path: string, status: number, ms: number): void {
    const last = this.#lastTally;
    const tally =
      last && last.status === status && last.method === method && last.path === path
        ? last
        : this.#tallyFor(method, path, status);

    this.#lastTally = tally;
    tally.count++;
    if (ms > tally.slowestMs) tally.slowestMs = ms;

    if (!this.#flushScheduled) this.#scheduleFlush();
  }

  #tallyFor(method: string, path: string, status: number): Tally {
    let key = `${status} ${method} ${path}`;
    if (!this.#tallies.has(key) && this.#tallies.size >= this.#options.maxKinds) key = otherKinds;

    let tally = this.#tallies.get(key);
    if (!tally) {
      tally = { method, path, status, count: 0, slowestMs: 0 };
      this.#tallies.set(key, tally);
    }
    return tally;
  }

  #scheduleFlush(): void {
    this.#flushScheduled = true;
    const wait = Math.max(0, this.#windowEnds - this.#options.now());

    this.#options.schedule(() => {
      this.#flushScheduled = false;
      if (this.#options.now() >= this.#windowEnds) this.flush();
      else if (this.#tallies.size > 0) this.#scheduleFlush();
    }, wait);
  }

  #summarize(tally: Tally, mixed: boolean): void {
    const { burst, windowMs } = this.#options;
    const window = windowMs === 1000 ? "a second" : `${windowMs} ms`;
    const reason = `more than ${burst} requests in ${window}: counted, not logged one by one; ms is the slowest`;

    if (mixed) {
      this.#options.logger.info("requests", {
        count: tally.count,
        ms: roundMs(tally.slowestMs),
        reason: `${reason}; these had other methods, paths or statuses than the lines before`,
      });
      return;
    }

    this.#options.logger.info("requests", {
      method: quoteRequestText(tally.method, 16),
      path: quoteRequestText(tally.path, 128),
      status: tally.status,
      count: tally.count,
      ms: roundMs(tally.slowestMs),
      reason,
    });
  }
}

function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
