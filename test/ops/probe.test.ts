/**
 * `extprov probe` asks as iotedged does and applies iotedged's checks: it passes against
 * a real extprov, and against small mock servers on temporary sockets it fails with exit
 * 5 and a line naming exactly what iotedged would trip over. Secrets are never printed.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseEndpoint } from "../../src/probe/ask.ts";
import { symmetricKeyConfig, writeConfig, socketEndpoint } from "../helpers/config.ts";
import { makeCertificate, newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { python } from "../helpers/notify.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { folderForPathOf, sharedTempDir, tempDir } from "../helpers/temp.ts";
import { asNobody, asNobodySkipReason } from "../helpers/users.ts";

const demoKey = "RkFLRSBkZW1vIGtleSBmb3IgZXh0cHJvdjsgbm90IGEgc2VjcmV0IQ==";
const hub = { hubName: "probe-hub.azure-devices.net", deviceId: "probe-device" };
const base64 = (text: string) => Buffer.from(text).toString("base64");

/** A mock endpoint on a temporary socket that answers every request with `status` and `body`. */
function mock(body: unknown, status = 200, folder = tempDir()) {
  const socket = join(folder, "mock.sock");
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const requests: { method: string; url: string; body: string }[] = [];
  const server = Bun.serve({
    unix: socket,
    fetch: async (request) => {
      requests.push({ method: request.method, url: request.url, body: await request.text() });
      return new Response(text, { status, headers: { "content-type": "application/json" } });
    },
  });
  return { socket, requests, [Symbol.dispose]: () => server.stop(true) };
}

async function probe(endpoint: string, secrets: string[] = [], wrapper: string[] = []) {
  return runExtprov({ args: ["probe", "--endpoint", endpoint], secrets, wrapper });
}

describe("probe against extprov", () => {
  test("passes against serve --demo, asked by --endpoint and by --demo, with the key masked", async () => {
    const cwd = tempDir();
    const server = await startServer({ args: ["serve", "--demo"], cwd, secrets: [demoKey] });

    const byEndpoint = await runExtprov({
      args: ["probe", "--endpoint", `unix://${cwd}/run/external.sock`],
      secrets: [demoKey],
    });
    const byDemo = await runExtprov({ args: ["probe", "--demo"], cwd, secrets: [demoKey] });

    for (const result of [byEndpoint, byDemo]) {
      expect(result.code).toBe(0);
      expect(result.output).toStartWith(
        `probe passed: unix://${cwd}/run/external.sock answered 200 in `,
      );
      expect(result.output).toMatch(/"key": "<secret: 56 characters, sha256 [0-9a-f]{8}>"/);
      expect(result.output).toContain('"deviceId": "extprov-demo-device"');
    }
    expect(await server.stop()).toBe(0);
  });

  test("passes against an X.509 payload, found through --config, with certificate and key masked", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const identity = makeCertificate({ commonName: "probe-device" });
    writeSecret(folder, "cert.pem", identity.certificatePem, 0o644);
    writeSecret(folder, "key.pem", identity.privateKeyPem);
    const config = writeConfig(folder, {
      device: hub,
      credentials: { x509: { source: "payload", certificate: "cert.pem", privateKey: "key.pem" } },
      listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    });
    const secrets = [identity.privateKeyPem, base64(identity.privateKeyPem)];
    const server = await startServer({ args: ["serve", "--config", config], secrets });

    const result = await runExtprov({ args: ["probe", "--config", config], secrets });

    expect(result.code).toBe(0);
    expect(result.output).toMatch(/"identityCert": "<secret: \d+ characters, sha256 [0-9a-f]{8}>"/);
    expect(result.output).toMatch(
      /"identityPrivateKey": "<secret: \d+ characters, sha256 [0-9a-f]{8}>"/,
    );
    expect(await server.stop()).toBe(0);
  });
});

describe("probe asks as iotedged does", () => {
  test("GET with the api-version query and an empty body", async () => {
    const key = newSymmetricKey();
    using endpoint = mock({
      ...hub,
      credentials: { authType: "symmetric-key", source: "payload", key },
    });

    const result = await probe(`unix://${endpoint.socket}`, [key]);

    expect(result.code).toBe(0);
    expect(endpoint.requests).toEqual([
      {
        method: "GET",
        url: "http://localhost/device/provisioninginformation?api-version=2019-04-10",
        body: "",
      },
    ]);
  });

  test("over TCP on loopback", async () => {
    const key = newSymmetricKey();
    const answer = JSON.stringify({
      ...hub,
      credentials: { authType: "symmetric-key", source: "payload", key },
    });
    using server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(answer) });

    const result = await probe(`http://127.0.0.1:${server.port}`, [key]);

    expect(result.code).toBe(0);
    expect(result.output).toContain(`probe passed: http://127.0.0.1:${server.port} answered 200`);
    expect(result.output).toContain("warning: the answer's content-type is not application/json");
  });
});

describe("probe finds what iotedged would refuse", () => {
  const key = newSymmetricKey();
  const symmetric = (extra: Record<string, unknown>) => ({
    ...hub,
    credentials: { authType: "symmetric-key", source: "payload", key },
    ...extra,
  });
  const identity = makeCertificate({ commonName: "probe-device" });
  const other = makeCertificate({ commonName: "probe-device" });
  const x509 = (identityCert: string, identityPrivateKey: string) => ({
    ...hub,
    credentials: { authType: "x509", source: "payload", identityCert, identityPrivateKey },
  });

  const cases: [string, unknown, number, string][] = [
    [
      "a key that is not base64",
      {
        ...hub,
        credentials: { authType: "symmetric-key", source: "payload", key: "bm90IGJhc2U2NA=!" },
      },
      200,
      "credentials.key: the key is not valid standard base64",
    ],
    [
      "a URL-safe key",
      { ...hub, credentials: { authType: "symmetric-key", source: "payload", key: "ab-_cd" } },
      200,
      "credentials.key: the key is URL-safe base64, which iotedged does not decode",
    ],
    [
      "a missing key",
      { ...hub, credentials: { authType: "symmetric-key", source: "payload" } },
      200,
      "credentials.key is missing",
    ],
    [
      "a missing deviceId",
      { hubName: hub.hubName, credentials: { authType: "symmetric-key", source: "payload", key } },
      200,
      "deviceId is missing; iotedged requires it",
    ],
    ["missing credentials", hub, 200, "credentials is missing"],
    [
      "an unknown authType",
      symmetric({ credentials: { authType: "sas", source: "payload", key } }),
      200,
      'credentials.authType "sas" is not one of symmetric-key, x509',
    ],
    [
      "an unknown source",
      symmetric({ credentials: { authType: "symmetric-key", source: "tpm", key } }),
      200,
      'credentials.source "tpm" is not one of payload, hsm',
    ],
    [
      "a status iotedged does not parse",
      symmetric({ status: "active" }),
      200,
      'status "active" is not one of assigned, assigning, disabled, failed, unassigned',
    ],
    ["a hubName that is a number", symmetric({ hubName: 7 }), 200, "hubName is not a string"],
    ["a body that is not JSON", "hubName=x", 200, "the answer is not valid JSON"],
    [
      "a 500 with an ErrorResponse",
      { message: "the backend is down" },
      500,
      'answered 500, not 2xx: "the backend is down"; iotedged treats any other status',
    ],
    ["a 404 without a body", "", 404, "answered 404, not 2xx; iotedged"],
    [
      "an identityCert that is not base64",
      x509("%%%", base64(identity.privateKeyPem)),
      200,
      "credentials.identityCert is not valid standard base64",
    ],
    [
      "an identityCert that is not PEM",
      x509(base64("DER bytes"), base64(identity.privateKeyPem)),
      200,
      "credentials.identityCert does not decode to a PEM certificate",
    ],
    [
      "an identityCert that holds the private key too",
      x509(
        base64(identity.certificatePem + identity.privateKeyPem),
        base64(identity.privateKeyPem),
      ),
      200,
      "credentials.identityCert holds a private key as well as the certificate; the endpoint hands the key out",
    ],
    [
      "a missing identityPrivateKey",
      {
        ...hub,
        credentials: {
          authType: "x509",
          source: "payload",
          identityCert: base64(identity.certificatePem),
        },
      },
      200,
      "credentials.identityPrivateKey is missing",
    ],
    [
      "a private key of another certificate",
      x509(base64(identity.certificatePem), base64(other.privateKeyPem)),
      200,
      "credentials: the private key does not belong to the identity certificate",
    ],
    [
      "an hsm certificate path that is empty",
      {
        ...hub,
        credentials: {
          authType: "x509",
          source: "hsm",
          identityCert: "",
          identityPrivateKey: "/k.pem",
        },
      },
      200,
      "credentials.identityCert is missing or empty",
    ],
  ];

  for (const [name, body, status, expected] of cases) {
    test(`fails on ${name}`, async () => {
      using endpoint = mock(body, status);
      const secrets = [
        key,
        identity.privateKeyPem,
        other.privateKeyPem,
        base64(identity.privateKeyPem),
        base64(other.privateKeyPem),
      ];

      const result = await probe(`unix://${endpoint.socket}`, secrets);

      expect(result.code).toBe(5);
      expect(result.output).toContain(`error probe failed: `);
      expect(result.output).toContain(expected);
      expect(result.output).not.toContain("probe passed");
    });
  }

  test("does not repeat a key that an ErrorResponse carries", async () => {
    using endpoint = mock({ message: `rejected key ${key}` }, 403);

    const result = await probe(`unix://${endpoint.socket}`, [key]);

    expect(result.code).toBe(5);
    expect(result.output).toContain('answered 403, not 2xx: "rejected key <redacted>"');
  });

  test("passes with warnings on an unknown field and a substatus iotedged does not know", async () => {
    using endpoint = mock(symmetric({ substatus: "movedSomewhere", extra: true }));

    const result = await probe(`unix://${endpoint.socket}`, [key]);

    expect(result.code).toBe(0);
    expect(result.output).toContain('warning: "extra" is not in the API; iotedged ignores it');
    expect(result.output).toContain(
      'warning: substatus "movedSomewhere" is not one iotedged knows; it treats it as initialAssignment',
    );
  });
});

describe("probe says precisely why it cannot connect", () => {
  test("no socket at the path", async () => {
    const socket = join(tempDir(), "missing.sock");

    const result = await probe(`unix://${socket}`);

    expect(result.code).toBe(5);
    expect(result.output).toContain(
      `probe failed: no socket at ${socket} (ENOENT); is extprov running`,
    );
  });

  test("a socket nothing listens on", async () => {
    const socket = join(tempDir(), "stale.sock");
    const bound = Bun.spawnSync([
      python,
      "-c",
      "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      socket,
    ]);
    expect(bound.exitCode).toBe(0);

    const result = await probe(`unix://${socket}`);

    expect(result.code).toBe(5);
    expect(result.output).toContain(
      `probe failed: connection refused by unix://${socket} (ECONNREFUSED); the socket is stale`,
    );
  });

  test("a socket path longer than a Unix socket address holds, though a server answers there", async () => {
    const answer = { ...hub, credentials: { authType: "symmetric-key", source: "hsm" } };
    using endpoint = mock(answer, 200, folderForPathOf(108, "mock.sock"));

    const result = await probe(`unix://${endpoint.socket}`);

    expect(result.code).toBe(5);
    expect(result.output).toContain(
      `probe failed: ${endpoint.socket}: the socket path is 108 bytes, more than the 107 a Unix socket address holds (108 with its terminating NUL), so iotedged could not connect by it; choose a shorter path`,
    );
    expect(endpoint.requests).toEqual([]);
  });

  test("a regular file at the path", async () => {
    const path = join(tempDir(), "file.sock");
    writeFileSync(path, "");

    const result = await probe(`unix://${path}`);

    expect(result.code).toBe(5);
    expect(result.output).toContain(`probe failed: ${path} is not a socket`);
  });

  test.skipIf(asNobodySkipReason !== undefined)(
    "a socket this user may not connect to",
    async () => {
      using endpoint = mock({}, 200, sharedTempDir());
      chmodSync(endpoint.socket, 0o600);
      const nobody = asNobody;

      const result = await probe(`unix://${endpoint.socket}`, [], nobody);

      expect(result.code).toBe(5);
      expect(result.output).toContain(
        `probe failed: permission denied connecting to unix://${endpoint.socket} (EACCES)`,
      );
      expect(endpoint.requests).toEqual([]);
    },
  );

  test("an explicit port 80 is taken as written, and a missing port is refused", () => {
    expect(parseEndpoint("http://127.0.0.1:80")).toEqual({
      kind: "tcp",
      hostname: "127.0.0.1",
      port: 80,
    });
    expect(parseEndpoint("http://[::1]:080/")).toEqual({ kind: "tcp", hostname: "::1", port: 80 });
    expect(() => parseEndpoint("http://127.0.0.1")).toThrow("cannot probe http://127.0.0.1");
    expect(() => parseEndpoint("http://127.0.0.1:")).toThrow("cannot probe http://127.0.0.1:");
  });

  test("an endpoint iotedged cannot use is a usage error", async () => {
    const https = await probe("https://127.0.0.1:9");
    const both = await runExtprov({
      args: ["probe", "--endpoint", "unix:///nonexistent.sock", "--config", "/nonexistent.yaml"],
    });

    expect(https.code).toBe(2);
    expect(https.output).toContain(
      "cannot probe https://127.0.0.1:9; iotedged takes unix:///path or http://host:port",
    );
    expect(both.code).toBe(2);
    expect(both.output).toContain("--endpoint and --config (or --demo) exclude each other");
  });
});

describe("probe's default endpoint", () => {
  test("is the one the configuration names, with --config", async () => {
    const folder = tempDir();
    const socket = join(folder, "nothing-here.sock");
    const config = writeConfig(folder, symmetricKeyConfig(socket, newSymmetricKey()));

    const result = await runExtprov({ args: ["probe", "--config", config] });

    expect(result.code).toBe(5);
    expect(result.output).toContain(`no socket at ${socket} (ENOENT)`);
  });
});
