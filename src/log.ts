/**
 * The one logger. Each event is one line on stderr, as plain text for a terminal, with
 * syslog priority prefixes under journald, or as JSON for log collectors.
 *
 * Fields are allow-listed by type: a log call can only carry the names below, so a key,
 * a connection string or a PEM block cannot reach the log by accident.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export interface LogFields {
  method?: string;
  path?: string;
  status?: number;
  ms?: number;
  endpoint?: string;
  socket?: string;
  file?: string;
  field?: string;
  uid?: number;
  gid?: number;
  user?: string;
  group?: string;
  mode?: string;
  hub?: string;
  device?: string;
  auth?: string;
  source?: string;
  version?: string;
  commit?: string;
  pid?: number;
  signal?: string;
  code?: number;
  reason?: string;
  hint?: string;
  count?: number;
  stream?: string;
  line?: string;
  hook?: string;
  seconds?: number;
  trigger?: string;
  previousHub?: string;
  previousDevice?: string;
  provisioningStatus?: string;
  substatus?: string;
}

const priorities: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };
const ranks: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Under journald the journal adds the time; a `<N>` prefix sets the priority. */
  journald: boolean;
  write: (line: string) => void;
}

export class Logger {
  constructor(private options: LoggerOptions) {}

  configure(options: Partial<LoggerOptions>): void {
    this.options = { ...this.options, ...options };
  }

  debug(event: string, fields?: LogFields): void {
    this.emit("debug", event, fields);
  }

  info(event: string, fields?: LogFields): void {
    this.emit("info", event, fields);
  }

  warn(event: string, fields?: LogFields): void {
    this.emit("warn", event, fields);
  }

  error(event: string, fields?: LogFields): void {
    this.emit("error", event, fields);
  }

  /**
   * The per-request line, the one written most: the same text as
   * `info("request", { method, path, status, ms })`, built without the general formatter.
   */
  request(method: string, path: string, status: number, ms: number): void {
    if (this.options.format === "json" || !this.enabled("info")) {
      this.info("request", { method, path, status, ms });
      return;
    }

    const start = this.options.journald ? "<6>" : `${timestamp()} `;
    const line = `${start}info  request method=${quoteIfNeeded(method)} path=${quoteIfNeeded(path)} status=${status} ms=${ms}\n`;

    try {
      this.options.write(line);
    } catch {
      // A closed stderr (the log reader went away) must not stop the endpoint.
    }
  }

  enabled(level: LogLevel): boolean {
    return ranks[level] >= ranks[this.options.level];
  }

  private emit(level: LogLevel, event: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;

    const line =
      this.options.format === "json"
        ? formatJson(level, event, fields)
        : formatText(level, event, fields, this.options.journald);

    try {
      this.options.write(line + "\n");
    } catch {
      // A closed stderr (the log reader went away) must not stop the endpoint.
    }
  }
}

function formatJson(level: LogLevel, event: string, fields: LogFields): string {
  return JSON.stringify({ ts: timestamp(), level, event, ...fields });
}

let lastMillisecond = 0;
let lastTimestamp = "";

/** The ISO time, formatted once per millisecond: under load many lines share one. */
function timestamp(): string {
  const now = Date.now();
  if (now !== lastMillisecond) {
    lastMillisecond = now;
    lastTimestamp = isoTime(now);
  }
  return lastTimestamp;
}

const millisecondsPerDay = 86_400_000;

/**
 * `ms` since the epoch as `Date.prototype.toISOString` writes it (UTC, years 1970 to 9999),
 * computed without a Date: the first Date the runtime makes sets up its time zone data,
 * about a millisecond at start-up that a log line in UTC does not need.
 */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / millisecondsPerDay);
  const { year, month, day } = civilDate(days);
  let rest = ms - days * millisecondsPerDay;

  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;

  return `${year}-${pad(month, 2)}-${pad(day, 2)}T${pad(hours, 2)}:${pad(minutes, 2)}:${pad(seconds, 2)}.${pad(millis, 3)}Z`;
}

/**
 * The proleptic Gregorian date `days` after 1970-01-01. Counted in 400-year eras that
 * start on March 1st, so the leap day is the last day of its year and falls out of the
 * arithmetic.
 */
function civilDate(days: number): { year: number; month: number; day: number } {
  const shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear =
    dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);

  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = era * 400 + yearOfEra + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}

/**
 * `<time> <level> <event> name=value ...: <reason>; <hint>`. Reason and hint are prose for
 * a person, so they close the line unquoted, as "action: cause" reads on a device.
 */
function formatText(level: LogLevel, event: string, fields: LogFields, journald: boolean): string {
  const { reason, hint, ...rest } = fields;
  let line = journald ? `<${priorities[level]}>` : `${timestamp()} `;
  line += `${level.padEnd(5)} ${event}`;

  for (const [name, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    line += ` ${name}=${quoteIfNeeded(String(value))}`;
  }

  if (reason !== undefined) line += `: ${oneLine(reason)}`;
  if (hint !== undefined) line += `${reason === undefined ? ":" : ";"} ${oneLine(hint)}`;
  return line;
}

function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, " ");
}

/** Quotes values with spaces or quotes, and escapes control characters from requests. */
function quoteIfNeeded(value: string): string {
  if (/^[\w./:@+,-]*$/.test(value)) return value;
  return JSON.stringify(value);
}

/**
 * Writes log lines to stderr in batches: lines written during one turn of the event loop
 * go out in one write after it, instead of one system call per request. Whatever is
 * still buffered is written when the process exits, so no line is lost.
 */
function batchedStderr(): (line: string) => void {
  const sink = Bun.stderr.writer();
  let flushScheduled = false;

  const flush = () => {
    flushScheduled = false;
    try {
      const pending = sink.flush();
      if (pending instanceof Promise) pending.catch(() => {});
    } catch {
      // A closed stderr must not stop the endpoint; the lines are dropped.
    }
  };

  process.on("exit", flush);

  return (line) => {
    sink.write(line);
    if (flushScheduled) return;

    flushScheduled = true;
    setImmediate(flush);
  };
}

/** The process-wide logger; main configures it from the command line. */
export const log = new Logger({
  level: "info",
  format: "text",
  journald: Boolean(process.env.JOURNAL_STREAM),
  write: batchedStderr(),
});
