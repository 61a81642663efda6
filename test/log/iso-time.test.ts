/**
 * The log's timestamps are computed without a Date; they must read exactly as
 * Date.prototype.toISOString would write them, leap days and century years included.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isoTime } from "../../src/log.ts";

const lastMillisecondOf9999 = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

describe("log timestamps", () => {
  test.each([
    "1970-01-01T00:00:00.000Z",
    "1999-12-31T23:59:59.999Z",
    "2000-02-29T12:00:00.001Z",
    "2024-02-29T00:00:00.000Z",
    "2026-12-04T16:05:09.042Z",
    "2100-02-28T23:59:59.999Z",
    "2100-03-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
  ])("%s", (text) => {
    expect(isoTime(Date.parse(text))).toBe(text);
  });

  test("match toISOString for any time from 1970 to 9999", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: lastMillisecondOf9999 }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });
});
