/**
 * Every error answer is the API's ErrorResponse: JSON `{"message": ...}` with the right
 * status, no stack trace, no secret; and the server keeps answering afterwards.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { apiQuery, fetchUnix, provisioningPath, rawRequest } from "../helpers/http.ts";
import { expectErrorResponse, type RunningServer, serveSymmetricKey } from "../helpers/server.ts";
import { swaggerViolations } from "../helpers/swagger.ts";

const key = newSymmetricKey();
let socket: string;
let server: RunningServer;

beforeAll(async () => {
  ({ socket, server } = await serveSymmetricKey(key));
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function errorMessage(path: string, status: number, init?: RequestInit): Promise<string> {
  const response = await fetchUnix(socket, path, init);
  const message = await expectErrorResponse(response.clone() as Response, status);
  expect(swaggerViolations("ErrorResponse", await response.json())).toEqual([]);
  expect(message).not.toContain(key);
  expect(message).not.toMatch(/\bat \S+:\d+/);
  return message;
}

describe("error answers", () => {
  test("an unknown path is a 404 that names the paths served", async () => {
    expect(await errorMessage(`/device/other?${apiQuery}`, 404)).toContain(
      "GET /device/provisioninginformation",
    );
  });

  test("a wrong method is a 405 with an Allow header", async () => {
    const response = await fetchUnix(socket, provisioningPath, { method: "DELETE" });

    expect(await expectErrorResponse(response, 405)).toContain("use GET");
    expect(response.headers.get("allow")).toBe("GET");
  });

  test("PUT on the reprovision path is a 405 that says to use GET or POST", async () => {
    expect(await errorMessage(`/device/reprovision?${apiQuery}`, 405, { method: "PUT" })).toContain(
      "use GET, POST",
    );
  });

  test.each([
    [provisioningPath, "GET"],
    [`/device/reprovision?${apiQuery}`, "GET, POST"],
  ])("HEAD %s is a 405 whose Allow header lists only what is served", async (path, allowed) => {
    const response = await fetchUnix(socket, path, { method: "HEAD" });

    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe(allowed);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.text()).toBe("");
  });

  test.each([
    ["HEAD", "/device/provisioninginformation/", "GET"],
    ["POST", "/device/provisioninginformation/", "GET"],
    ["HEAD", "/device/reprovision/", "GET, POST"],
    ["PUT", "/device/reprovision/", "GET, POST"],
  ])(
    "%s %s, served with its trailing slash, is a 405 with the path's Allow",
    async (method, path, allowed) => {
      const served = await fetchUnix(socket, `${path}?${apiQuery}`);
      const response = await fetchUnix(socket, `${path}?${apiQuery}`, { method });

      expect(served.status).toBe(200);
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe(allowed);
      if (method !== "HEAD") expect(await response.text()).toContain(`use ${allowed}`);
    },
  );

  test("a path with two trailing slashes is not served, and is a 404", async () => {
    const response = await fetchUnix(socket, `/device/reprovision//?${apiQuery}`, {
      method: "HEAD",
    });

    expect(response.status).toBe(404);
  });

  test("HEAD on an unknown path is a 404", async () => {
    const response = await fetchUnix(socket, `/device/other?${apiQuery}`, { method: "HEAD" });

    expect(response.status).toBe(404);
  });

  // A client may send the device's own key; the log is read by more people than connect.
  test("the served key sent as a path or an api-version is not repeated in the answer or the log", async () => {
    const encoded = encodeURIComponent(key);

    expect(await errorMessage(`/device/${encoded}?${apiQuery}`, 404)).toContain(
      "no such path: <key-like text>;",
    );
    expect(await errorMessage(`/device/provisioninginformation?api-version=${encoded}`, 400)).toBe(
      'api-version "<key-like text>" is not supported; call with ?api-version=2019-04-10',
    );
    expect(await errorMessage(`/device/${key.replaceAll("/", "_")}`, 404)).toContain(
      "<key-like text>",
    );
    // The request log is checked for the key when the server stops (afterAll).
    expect(server.output()).toContain(`path="<key-like text>" status=404`);
  });

  test("a missing api-version is a 400 that says which version to send", async () => {
    expect(await errorMessage("/device/provisioninginformation", 400)).toBe(
      "the api-version query parameter is missing; call with ?api-version=2019-04-10",
    );
  });

  test("an unsupported api-version is a 400 that repeats it safely", async () => {
    const message = await errorMessage(
      "/device/provisioninginformation?api-version=2099-01-01%0A%1B",
      400,
    );

    expect(message).toStartWith('api-version "2099-01-01??" is not supported');
  });

  test("an empty api-version is a 400 that shows it quoted", async () => {
    expect(await errorMessage("/device/provisioninginformation?api-version=", 400)).toBe(
      'api-version "" is not supported; call with ?api-version=2019-04-10',
    );
  });

  test.each([
    [`${apiQuery}&api-version=2099-01-01`, "the good one first"],
    [`api-version=2099-01-01&${apiQuery}`, "the good one last"],
    [`${apiQuery}&${apiQuery}`, "the good one twice"],
    [`${apiQuery}&api%2Dversion=2099-01-01`, "one of them percent-encoded"],
  ])(
    "an api-version given twice (%s: %s) is a 400 that says so, whatever the order",
    async (query) => {
      expect(await errorMessage(`/device/provisioninginformation?${query}`, 400)).toStartWith(
        "api-version is given more than once;",
      );
    },
  );

  test("a POST to reprovision with a wrong api-version first and the good one last is refused, and nothing is reprovisioned", async () => {
    const path = `/device/reprovision?api-version=2099-01-01&${apiQuery}`;
    const reprovisions = server.count("reprovision requested");

    expect(await errorMessage(path, 400, { method: "POST" })).toStartWith(
      "api-version is given more than once;",
    );
    expect(server.count("reprovision requested")).toBe(reprovisions);
  });

  test("an unknown path or a wrong method with api-version given twice is told that first", async () => {
    const twice = `?${apiQuery}&api-version=2099-01-01`;

    expect(await errorMessage(`/device/other${twice}`, 404)).toStartWith("no such path");
    expect(await errorMessage(`/device/reprovision${twice}`, 405, { method: "PUT" })).toStartWith(
      "PUT is not allowed on /device/reprovision",
    );
  });

  test("a query that starts with a second ? has no api-version, and is told so", async () => {
    expect(await errorMessage(`/device/provisioninginformation??${apiQuery}`, 400)).toBe(
      "the api-version query parameter is missing; call with ?api-version=2019-04-10",
    );
  });

  test("a fragment sent in the request line is part of the value it follows, and is named", async () => {
    const answer = await rawRequest(
      socket,
      `GET ${provisioningPath}#x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    );

    expect(answer).toStartWith("HTTP/1.1 400");
    expect(answer).toContain('{"message":"api-version \\"2019-04-10#x\\" is not supported;');
  });

  test("the reprovision route checks the api-version too", async () => {
    await errorMessage("/device/reprovision", 400, { method: "POST" });
  });

  test("a body larger than the limit is refused and the server still answers", async () => {
    const response = await fetchUnix(socket, `/device/reprovision?${apiQuery}`, {
      method: "POST",
      body: "x".repeat(1 << 20),
    });

    expect(response.status).toBe(413);
    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
  });

  test("malformed HTTP gets a 400 and the next request is answered", async () => {
    const answer = await rawRequest(socket, "NOT HTTP AT ALL\r\n\r\n");

    expect(answer).toStartWith("HTTP/1.1 400");
    expect((await fetchUnix(socket, provisioningPath)).status).toBe(200);
  });
});

describe("the Host header a client sends over a Unix socket", () => {
  const hosts = [
    [
      "hex-encoded socket path, as hyper's Unix connectors build it",
      "2f7661722f72756e2f65787465726e616c2f65787465726e616c2e736f636b:0",
    ],
    ["localhost", "localhost"],
    ["a unix: URL, which is not a valid host name", "unix:/var/run/external/external.sock"],
    ["an empty value", ""],
    ["one letter, shorter than Elysia's path search assumes", "x"],
    ["three letters with a port", "abc:80"],
  ] as const;

  for (const [what, host] of hosts) {
    test(`is accepted when it is ${what}`, async () => {
      const request = `GET ${provisioningPath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

      const answer = await rawRequest(socket, request);

      expect(answer).toStartWith("HTTP/1.1 200");
      expect(answer).toContain(`"key":"${key}"`);
    });
  }

  test("is not needed by an HTTP/1.0 client", async () => {
    const answer = await rawRequest(socket, `GET ${provisioningPath} HTTP/1.0\r\n\r\n`);

    expect(answer).toStartWith("HTTP/1.1 200");
  });

  test("unknown paths are found by path whatever the Host header", async () => {
    const answer = await rawRequest(
      socket,
      `GET /nope HTTP/1.1\r\nHost: unix:/x\r\nConnection: close\r\n\r\n`,
    );

    expect(answer).toStartWith("HTTP/1.1 404");
    expect(answer).toContain('{"message":"no such path: /nope;');
  });
});

describe("/device/reprovision", () => {
  test("answers iotedged's GET with 200 and an empty body, and logs the event", async () => {
    const response = await fetchUnix(socket, `/device/reprovision?${apiQuery}`);

    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    await server.waitFor("reprovision requested hub=test-hub.azure-devices.net device=test-device");
  });

  test("answers the swagger's POST the same way", async () => {
    const response = await fetchUnix(socket, `/device/reprovision?${apiQuery}`, { method: "POST" });

    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
  });
});
