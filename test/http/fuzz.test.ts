/**
 * Bad requests, generated: request lines, methods, paths (percent-encoded, doubled
 * slashes, dot segments, NUL and control bytes, very long), queries, headers and bodies,
 * sent as raw bytes over the real socket and through fetch. Each gets a known status, an
 * extprov error is `{"message": ...}` JSON, the server answers the next good request, and
 * its memory stays bounded. Run counts are fixed; FUZZ_SEED replays a failure.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { join } from "node:path";
import fc from "fast-check";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { apiQuery, fetchUnix, provisioningPath } from "../helpers/http.ts";
import { residentMiB } from "../helpers/proc.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";
import { countBadInputs, recordErrorBody } from "../helpers/suite-record.ts";
import { tempDir } from "../helpers/temp.ts";

const key = newSymmetricKey();
let socket: string;
let server: RunningServer;
let rssAtStart: number;
let badInputs = 0;

/** Every status a request can get: extprov's own, and those Bun's parser answers itself. */
const knownStatuses = new Set([100, 200, 400, 404, 405, 413, 431, 505]);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const runs = (numRuns: number) => ({
  numRuns,
  seed,
  interruptAfterTimeLimit: 60_000,
  markInterruptAsFailure: true,
});

beforeAll(async () => {
  const folder = tempDir();
  socket = join(folder, "external.sock");
  const config = writeConfig(folder, symmetricKeyConfig(socket, key));
  server = await startServer({ args: ["serve", "--config", config], secrets: [key] });
  await fetchUnix(socket, provisioningPath);
  rssAtStart = residentMiB(server.process.pid);
});

afterAll(async () => {
  countBadInputs(badInputs);
  expect(await server.stop()).toBe(0);
});

interface ParsedResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Writes `bytes`, half-closes, and collects the answer until the server closes (5 s at most). */
function exchange(bytes: Uint8Array): Promise<{ text: string; closed: boolean }> {
  const { promise, resolve } = Promise.withResolvers<{ text: string; closed: boolean }>();
  const client = connect(socket);
  let text = "";

  const timer = setTimeout(() => {
    client.destroy();
    resolve({ text, closed: false });
  }, 5_000);
  client.on("connect", () => client.end(bytes));
  client.on("data", (chunk) => (text += chunk.toString("latin1")));
  // A reset after an early answer (the server would not read the rest) is a close too.
  client.on("error", () => {});
  client.on("close", () => {
    clearTimeout(timer);
    resolve({ text, closed: true });
  });

  return promise;
}

/** The first final (non-1xx) response of an answer, and every status line in it. */
function parseAnswer(text: string): { statuses: number[]; final?: ParsedResponse } {
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) [A-Za-z]/g)].map((match) =>
    Number(match[1]),
  );
  const start = text.search(/HTTP\/1\.1 [2-5]\d\d /);
  if (start < 0) return { statuses };

  const headEnd = text.indexOf("\r\n\r\n", start);
  const [statusLine, ...lines] = text.slice(start, headEnd < 0 ? undefined : headEnd).split("\r\n");
  const headers = new Map(
    lines.map((line) => [
      line.slice(0, line.indexOf(":")).toLowerCase(),
      line.slice(line.indexOf(":") + 1).trim(),
    ]),
  );
  const length = Number(headers.get("content-length") ?? 0);
  const body = headEnd < 0 ? "" : text.slice(headEnd + 4, headEnd + 4 + length);
  return { statuses, final: { status: Number(statusLine!.slice(9, 12)), headers, body } };
}

/** What every answer must be: known statuses; extprov's errors as the API's JSON. */
function checkAnswer(
  response: ParsedResponse | undefined,
  statuses: number[],
  method: string,
): void {
  for (const status of statuses) expect(knownStatuses).toContain(status);
  // An answer to HEAD has the headers of the error, without its body.
  if (!response || response.status < 400 || method === "HEAD") return;
  if (response.headers.get("content-type") !== "application/json") return;

  const body = JSON.parse(response.body) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["message"]);
  expect(typeof body.message).toBe("string");
  expect(body.message as string).not.toMatch(/\bat \S+:\d+:\d+/);
}

const latin1 = (text: string) => Buffer.from(text, "latin1");
const latin1String = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const anyByte = fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));
const urlByte = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(..."abcdefz019-._~/%?#&=+;:@!$'()*,[]") },
  {
    weight: 2,
    arbitrary: fc.constantFrom("%2F", "%2f", "%2e", "%00", "%0A", "%ZZ", "%", "//", "/./", "/../"),
  },
  { weight: 1, arbitrary: anyByte },
);

const method = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      "GET",
      "GET",
      "GET",
      "POST",
      "POST",
      "HEAD",
      "PUT",
      "DELETE",
      "OPTIONS",
      "TRACE",
      "PATCH",
      "CONNECT",
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom("get", "FOO", "G\0T", "", "GET GET", "M-SEARCH", "PRI") },
  { weight: 1, arbitrary: fc.string({ unit: anyByte, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constant("X".repeat(4_096)) },
);

const segment = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "device",
      "provisioninginformation",
      "reprovision",
      "DEVICE",
      "",
      ".",
      "..",
      "%64evice",
      "%70rovisioninginformation",
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: urlByte, maxLength: 16 }) },
);

const query = fc.oneof(
  fc.constant(""),
  fc.constant(`?${apiQuery}`),
  fc
    .array(
      fc.tuple(
        fc.constantFrom(
          "api-version",
          "api-version",
          "API-VERSION",
          "api%2Dversion",
          "api-version[]",
          "x",
        ),
        fc.oneof(
          fc.constantFrom("2019-04-10", "2019-04-10", "2019-04-10#x", "", "2099-01-01"),
          fc.string({ unit: urlByte, maxLength: 32 }),
        ),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => `?${pairs.map(([name, value]) => `${name}=${value}`).join("&")}`),
);

const apiPath = fc.constantFrom("/device/provisioninginformation", "/device/reprovision");
const oddTarget = fc.constantFrom(
  "*",
  "",
  "device/provisioninginformation",
  `http://other.example${provisioningPath}`,
  `//${provisioningPath}`,
);
const target = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(apiPath, query).map(([path, q]) => path + q) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.array(segment, { minLength: 1, maxLength: 5 }), query)
      .map(([parts, q]) => `/${parts.join("/")}${q}`),
  },
  { weight: 1, arbitrary: oddTarget },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1_000, max: 40_000 })
      .map((length) => `/${"a".repeat(length)}?${apiQuery}`),
  },
);

const version = fc.oneof(
  { weight: 12, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 2, arbitrary: fc.constant("HTTP/1.0") },
  { weight: 1, arbitrary: fc.constantFrom("HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.10", "") },
);
const newline = fc.oneof(
  { weight: 20, arbitrary: fc.constant("\r\n") },
  { weight: 1, arbitrary: fc.constantFrom("\n", "\r") },
);

const headerName = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "Connection",
      "Content-Type",
      "Accept",
      "Expect",
      "Upgrade",
      "Transfer-Encoding",
      "Host",
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: anyByte, minLength: 0, maxLength: 16 }) },
);
const headerValue = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.string({ unit: fc.constantFrom(..."abc019 -_./:;=,\"'"), maxLength: 40 }),
  },
  { weight: 1, arbitrary: fc.string({ unit: anyByte, maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 8_000, max: 24_000 }).map((length) => "v".repeat(length)),
  },
);
const headers = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 150, max: 400 })
      .map((count) =>
        Array.from({ length: count }, (_, index): [string, string] => [`X-${index}`, "a"]),
      ),
  },
);
const host = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "localhost",
      "x",
      "2f7661722f72756e:0",
      "unix:/var/run/external.sock",
      "",
    ),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.string({ unit: anyByte, maxLength: 24 }) },
);

/** A body and how it is framed: honest length, a wrong length, none, or chunked. */
const body = fc.record({
  bytes: fc.oneof(
    { weight: 2, arbitrary: fc.constant(new Uint8Array()) },
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 256 }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 16 * 1024 - 16, max: 64 * 1024 })
        .map((size) => new Uint8Array(size).fill(120)),
    },
  ),
  framing: fc.constantFrom(
    "content-length",
    "content-length",
    "none",
    "none",
    "wrong-length",
    "chunked",
    "chunked-broken",
    "both",
  ),
});

function frame(
  bytes: Uint8Array,
  framing: string,
  lineEnd: string,
): { headers: string[]; payload: Uint8Array } {
  const chunked = (size: string) =>
    Buffer.concat([latin1(`${size}${lineEnd}`), bytes, latin1(`${lineEnd}0${lineEnd}${lineEnd}`)]);

  switch (framing) {
    case "content-length":
      return { headers: [`Content-Length: ${bytes.length}`], payload: bytes };
    case "wrong-length":
      return { headers: [`Content-Length: ${bytes.length + 7}`], payload: bytes };
    case "chunked":
      return {
        headers: ["Transfer-Encoding: chunked"],
        payload: chunked(bytes.length.toString(16)),
      };
    case "chunked-broken":
      return { headers: ["Transfer-Encoding: chunked"], payload: chunked("zz") };
    case "both":
      return {
        headers: [`Content-Length: ${bytes.length}`, "Transfer-Encoding: chunked"],
        payload: chunked(bytes.length.toString(16)),
      };
    default:
      return { headers: [], payload: bytes };
  }
}

const rawRequest = fc
  .record({ method, target, version, newline, host, headers, body, close: fc.boolean() })
  .map(({ method, target, version, newline, host, headers, body, close }) => {
    const framed = frame(body.bytes, body.framing, newline);
    const lines = [
      `${method} ${target} ${version}`.trimEnd(),
      ...(host === undefined ? [] : [`Host: ${host}`]),
      ...headers.map(([name, value]) => `${name}: ${value}`),
      ...framed.headers,
      ...(close ? ["Connection: close"] : []),
    ];
    return Buffer.concat([latin1(lines.join(newline) + newline + newline), framed.payload]);
  });

describe("generated bad requests as raw bytes", () => {
  test("each gets a known status or a closed connection, and the next good request gets 200", async () => {
    await fc.assert(
      fc.asyncProperty(rawRequest, async (bytes) => {
        const { text, closed } = await exchange(bytes);
        const { statuses, final } = parseAnswer(text);
        if (final && final.status >= 400) recordErrorBody("raw fuzz request", final.body);

        expect(closed).toBe(true);
        checkAnswer(final, statuses, latin1String(bytes).split(" ", 1)[0]!);
        if (final?.status !== 200) badInputs++;
        expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
      }),
      runs(3000),
    );
  });
});

describe("generated bad requests through fetch", () => {
  const fetchMethod = fc.constantFrom(
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "HEAD",
    "QUERY",
    "X-CUSTOM",
  );
  const fetchPath = fc.string({
    unit: fc.oneof(urlByte, fc.constantFrom("é", "\u2028", "😀", " ")),
    maxLength: 200,
  });
  const fetchHeaders = fc.dictionary(
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
    fc.string({ unit: "grapheme-ascii", maxLength: 64 }),
    { maxKeys: 8 },
  );
  const fetchBody = fc.option(fc.string({ maxLength: 512 }));

  test("each gets a known status and extprov's errors are JSON", async () => {
    await fc.assert(
      fc.asyncProperty(
        fetchMethod,
        fetchPath,
        fetchHeaders,
        fetchBody,
        async (method, path, headers, body) => {
          let response: Response;
          try {
            const init = {
              method,
              headers,
              body: method === "GET" || method === "HEAD" ? undefined : (body ?? undefined),
            };
            response = await fetchUnix(socket, `/${path.replace(/^\/+/, "")}`, init);
          } catch (error) {
            // fetch itself refuses some header values and URLs: nothing was sent.
            expect(error).toBeInstanceOf(TypeError);
            return;
          }

          const text = await response.text();
          const headerMap = new Map(
            [...response.headers].map(([name, value]) => [name.toLowerCase(), value]),
          );
          checkAnswer(
            { status: response.status, headers: headerMap, body: text },
            [response.status],
            method,
          );
          if (response.status !== 200) badInputs++;
        },
      ),
      runs(1000),
    );

    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
  });
});

describe("answers Bun's HTTP parser gives itself, before extprov sees the request", () => {
  const get = (headers: string) => `GET ${provisioningPath} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
  const post = (headers: string, body = "") =>
    `POST /device/reprovision?${apiQuery} HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`;
  const cases: [string, string, string, RegExp][] = [
    ["headers over 16 KiB", get(`X-A: ${"a".repeat(17_000)}\r\n`), "431", /^HTTP\/1\.1 431 /],
    [
      "a URL over 16 KiB",
      `GET /${"a".repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      "431",
      /^HTTP\/1\.1 431 /,
    ],
    ["more than 200 header fields", get("X-A: a\r\n".repeat(250)), "431", /^HTTP\/1\.1 431 /],
    ["a declared body over 16 KiB", post("Content-Length: 16385\r\n"), "413", /^HTTP\/1\.1 413 /],
    [
      "Content-Length with Transfer-Encoding",
      post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
      "400",
      /^HTTP\/1\.1 400 /,
    ],
    ["a NUL byte in a header", get("X-A: a\0b\r\n"), "400", /^HTTP\/1\.1 400 /],
    [
      "a NUL byte in the path",
      `GET /dev\0ice HTTP/1.1\r\nHost: x\r\n\r\n`,
      "400 or 505",
      /^HTTP\/1\.1 (400|505) /,
    ],
    [
      "lines ended by LF alone",
      `GET ${provisioningPath} HTTP/1.1\nHost: x\n\n`,
      "400 or 505",
      /^HTTP\/1\.1 (400|505) /,
    ],
    ["an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400", /^HTTP\/1\.1 400 /],
    ["a folded header line", get("X-A: b\r\n c\r\n"), "400", /^HTTP\/1\.1 400 /],
    [
      "HTTP/1.1 without Host",
      `GET ${provisioningPath} HTTP/1.1\r\n\r\n`,
      "400",
      /^HTTP\/1\.1 400 /,
    ],
    [
      "an unknown method token",
      `FOO ${provisioningPath} HTTP/1.1\r\nHost: x\r\n\r\n`,
      "a closed connection",
      /^$/,
    ],
  ];

  for (const [what, request, answer, expected] of cases) {
    test(`${what}: ${answer}, without a body`, async () => {
      const { text, closed } = await exchange(latin1(request));

      expect(closed).toBe(true);
      expect(text).toMatch(expected);
      if (text) expect(text).toEndWith("\r\n\r\n");
      badInputs++;
    });
  }
});

describe("paths extprov answers itself", () => {
  const cases: [string, string, number][] = [
    ["a percent-encoded letter", `/device/%70rovisioninginformation?${apiQuery}`, 404],
    ["an encoded slash", `/device%2Fprovisioninginformation?${apiQuery}`, 404],
    ["a doubled slash", `/device//provisioninginformation?${apiQuery}`, 404],
    ["a leading doubled slash", `//device/provisioninginformation?${apiQuery}`, 404],
    ["different case", `/Device/ProvisioningInformation?${apiQuery}`, 404],
    [
      "dot segments, which URL parsing resolves to the real path",
      `/device/../device/./provisioninginformation?${apiQuery}`,
      200,
    ],
  ];

  for (const [what, path, status] of cases) {
    test(`${what}: ${status}`, async () => {
      const { text } = await exchange(
        latin1(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
      );
      const { final } = parseAnswer(text);

      expect(final?.status).toBe(status);
      checkAnswer(final, [final!.status], "GET");
      if (status !== 200) badInputs++;
    });
  }
});

describe("after all of it", () => {
  test("the same process still serves, and its memory grew by less than 64 MiB", async () => {
    const response = await fetchUnix(socket, provisioningPath);

    expect(response.status).toBe(200);
    expect(((await response.json()) as { credentials: { key: string } }).credentials.key).toBe(key);
    expect(server.process.exitCode).toBeNull();
    expect(residentMiB(server.process.pid) - rssAtStart).toBeLessThan(64);
  });
});
