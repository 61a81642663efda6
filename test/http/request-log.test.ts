/**
 * The request log stays bounded in a flood and still accounts for every request: lines
 * one by one up to the burst, then counts per method, path and status, written when the
 * window ends or the server stops.
 */
import { describe, expect, test } from "bun:test";
import { Logger } from "../../src/log.ts";
import { RequestLog } from "../../src/http/request-log.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { fetchUnix, provisioningPath } from "../helpers/http.ts";
import { serveSymmetricKey } from "../helpers/server.ts";

const provisioning = "/device/provisioninginformation";

/** A request log on a clock the test moves, writing to an array. */
function recorder(options: { burst?: number; maxKinds?: number } = {}) {
  const lines: string[] = [];
  const pending: (() => void)[] = [];
  let clock = 0;
  const logger = new Logger({
    level: "info",
    format: "text",
    journald: true,
    write: (line) => lines.push(line.trimEnd()),
  });
  const requests = new RequestLog({
    burst: options.burst ?? 3,
    windowMs: 1000,
    maxKinds: options.maxKinds ?? 16,
    logger,
    now: () => clock,
    schedule: (flush) => pending.push(flush),
  });

  return {
    lines,
    requests,
    advance(ms: number) {
      clock += ms;
      for (const flush of pending.splice(0)) flush();
    },
  };
}

/** Requests a log accounts for: lines of their own plus the counts in summaries. */
function accountedFor(lines: string[], match: string): number {
  let total = 0;
  for (const line of lines) {
    if (!line.includes(match)) continue;
    const count = /\bcount=(\d+)/.exec(line);
    total += count ? Number(count[1]) : 1;
  }
  return total;
}

describe("the request log", () => {
  test("logs the first requests of a second one by one and counts the rest", () => {
    const { lines, requests, advance } = recorder({ burst: 3 });

    for (let i = 0; i < 10; i++) requests.record("GET", provisioning, 200, i === 7 ? 4.567 : 0.1);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`<6>info  request method=GET path=${provisioning} status=200 ms=0.1`);

    advance(1000);
    expect(lines).toHaveLength(4);
    expect(lines[3]).toStartWith(
      `<6>info  requests method=GET path=${provisioning} status=200 count=7 ms=4.57: more than 3 requests in a second`,
    );
  });

  test("a new second logs one by one again and writes the previous second's counts first", () => {
    const lines: string[] = [];
    let clock = 0;
    const log = new RequestLog({
      burst: 2,
      logger: new Logger({
        level: "info",
        format: "text",
        journald: true,
        write: (line) => lines.push(line.trimEnd()),
      }),
      now: () => clock,
      schedule: () => {},
    });

    for (let i = 0; i < 5; i++) log.record("GET", provisioning, 200, 0.2);
    clock = 1500;
    log.record("GET", "/device/reprovision", 200, 0.3);

    expect(lines.map((line) => line.split(" ").slice(0, 3).join(" "))).toEqual([
      "<6>info  request",
      "<6>info  request",
      "<6>info  requests",
      "<6>info  request",
    ]);
    expect(lines[2]).toContain("count=3");
    expect(lines[3]).toContain("path=/device/reprovision");
  });

  test("counts each method, path and status apart, up to a limit, then together", () => {
    const { lines, requests, advance } = recorder({ burst: 0, maxKinds: 2 });

    requests.record("GET", provisioning, 200, 0.1);
    requests.record("GET", provisioning, 200, 0.1);
    requests.record("POST", provisioning, 405, 0.1);
    for (let i = 0; i < 5; i++) requests.record("GET", `/probe/${i}`, 404, 0.1);
    advance(1000);

    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(
      "method=GET path=/device/provisioninginformation status=200 count=2",
    );
    expect(lines[1]).toContain(
      "method=POST path=/device/provisioninginformation status=405 count=1",
    );
    expect(lines[2]).toContain("info  requests count=5");
    expect(lines[2]).toContain("other methods, paths or statuses");
    expect(accountedFor(lines, "requests")).toBe(8);
  });

  test("a summary quotes what the client sent, as the lines do", () => {
    const { lines, requests, advance } = recorder({ burst: 0 });

    requests.record("GET", "/x\u001b[31m y", 404, 0.1);
    advance(1000);

    expect(lines[0]).toContain('path="/x?[31m y"');
  });

  test("nothing is written for a window without counts, and a flush empties the counts", () => {
    const { lines, requests, advance } = recorder({ burst: 1 });

    requests.record("GET", provisioning, 200, 0.1);
    advance(1000);
    expect(lines).toHaveLength(1);

    requests.record("GET", provisioning, 200, 0.1);
    requests.record("GET", provisioning, 200, 0.1);
    requests.flush();
    requests.flush();
    expect(lines).toHaveLength(3);
    expect(lines[2]).toContain("count=1");
  });
});

describe("the request log of a flooded server", () => {
  test("accounts for every request, ok and not found, once the server stops", async () => {
    const { socket, server } = await serveSymmetricKey(newSymmetricKey());
    const before = server.output().length;

    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all([
        ...Array.from({ length: 20 }, () => fetchUnix(socket, provisioningPath)),
        ...Array.from({ length: 10 }, () => fetchUnix(socket, "/device/nothing")),
      ]);
      expect(answers.map((answer) => answer.status).sort()).toEqual([
        ...Array<number>(20).fill(200),
        ...Array<number>(10).fill(404),
      ]);
    }
    expect(await server.stop()).toBe(0);

    const lines = server.output().slice(before).split("\n");
    expect(accountedFor(lines, "status=200")).toBe(200);
    expect(accountedFor(lines, "path=/device/nothing status=404")).toBe(100);
  });
});
