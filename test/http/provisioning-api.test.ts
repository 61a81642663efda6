/**
 * The External Provisioning API end to end: the real server on a real socket, asked by
 * fetch and curl, for each kind of credential, with answers checked against the swagger.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig, socketEndpoint } from "../helpers/config.ts";
import { makeCertificate, newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { curlUnix, fetchUnix, provisioningPath } from "../helpers/http.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";
import { swaggerViolations } from "../helpers/swagger.ts";
import { tempDir } from "../helpers/temp.ts";

const hubName = "test-hub.azure-devices.net";

async function serve(folder: string, document: Record<string, unknown>, secrets: string[]) {
  const config = writeConfig(folder, document);
  return startServer({ args: ["serve", "--config", config], secrets });
}

async function provisioningInfo(socket: string) {
  const response = await fetchUnix(socket, provisioningPath);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("application/json");

  const body = (await response.json()) as Record<string, any>;
  expect(swaggerViolations("DeviceProvisioningInfo", body)).toEqual([]);
  return body;
}

async function stopCleanly(server: RunningServer) {
  expect(await server.stop()).toBe(0);
}

describe("GET /device/provisioninginformation", () => {
  test("serves an inline symmetric key with status and substatus", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const document = symmetricKeyConfig(socket, key, {
      device: {
        hubName,
        deviceId: "inline-device",
        status: "assigned",
        substatus: "deviceDataReset",
      },
    });
    const server = await serve(folder, document, [key]);

    expect(await provisioningInfo(socket)).toEqual({
      hubName,
      deviceId: "inline-device",
      credentials: { authType: "symmetric-key", source: "payload", key },
      status: "assigned",
      substatus: "deviceDataReset",
    });

    await stopCleanly(server);
  });

  test("serves a symmetric key read from a file, without status when none is configured", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const keyFile = writeSecret(folder, "device.key", `${key}\n`);
    const server = await serve(
      folder,
      {
        device: { hubName, deviceId: "file-device" },
        credentials: { symmetricKey: { file: keyFile } },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [key],
    );

    const body = await provisioningInfo(socket);

    expect(body).toEqual({
      hubName,
      deviceId: "file-device",
      credentials: { authType: "symmetric-key", source: "payload", key },
    });
    await stopCleanly(server);
  });

  test("serves the hub, device and key of a connection string read from a file", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const connection = `HostName=cs-hub.azure-devices.net;DeviceId=cs-device;SharedAccessKey=${key}`;
    const file = writeSecret(folder, "device.connection-string", connection);
    const server = await serve(
      folder,
      { credentials: { connectionString: { file } }, listen: { endpoint: socketEndpoint(socket) } },
      [key, connection],
    );

    expect(await provisioningInfo(socket)).toEqual({
      hubName: "cs-hub.azure-devices.net",
      deviceId: "cs-device",
      credentials: { authType: "symmetric-key", source: "payload", key },
    });

    await stopCleanly(server);
  });

  test("serves an inline connection string", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const value = `HostName=cs-hub.azure-devices.net;DeviceId=inline-cs;SharedAccessKey=${key}`;
    const server = await serve(
      folder,
      {
        credentials: { connectionString: { value } },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [key, value],
    );

    const body = await provisioningInfo(socket);

    expect(body.deviceId).toBe("inline-cs");
    expect(body.credentials.key).toBe(key);
    await stopCleanly(server);
  });

  test("sends an X.509 payload as base64 of the PEM files, decodable back to the same certificate and key", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const files = makeCertificate({ commonName: "x509-device" });
    const server = await serve(
      folder,
      {
        device: { hubName },
        credentials: {
          x509: { source: "payload", certificate: files.certificate, privateKey: files.privateKey },
        },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [files.privateKeyPem],
    );

    const body = await provisioningInfo(socket);
    const certificate = Buffer.from(body.credentials.identityCert, "base64").toString("utf8");
    const privateKey = Buffer.from(body.credentials.identityPrivateKey, "base64").toString("utf8");

    expect(body.deviceId).toBe("x509-device");
    expect(body.credentials).toMatchObject({ authType: "x509", source: "payload" });
    expect(certificate).toBe(files.certificatePem);
    expect(privateKey).toBe(files.privateKeyPem);
    await stopCleanly(server);
  });

  test("sends only the key from a private key file that also holds the certificate", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const files = makeCertificate({ commonName: "x509-device" });
    const keyAndCertificate = writeSecret(
      folder,
      "key-and-cert.pem",
      files.certificatePem + files.privateKeyPem,
    );
    const server = await serve(
      folder,
      {
        device: { hubName },
        credentials: {
          x509: {
            source: "payload",
            certificate: files.certificate,
            privateKey: keyAndCertificate,
          },
        },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [files.privateKeyPem],
    );

    const body = await provisioningInfo(socket);
    const privateKey = Buffer.from(body.credentials.identityPrivateKey, "base64").toString("utf8");

    expect(privateKey).toBe(files.privateKeyPem);
    expect(privateKey).not.toContain("CERTIFICATE");
    await stopCleanly(server);
  });

  test("passes hsm certificate and key paths through as given", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const server = await serve(
      folder,
      {
        device: { hubName, deviceId: "hsm-device" },
        credentials: {
          x509: {
            source: "hsm",
            certificate: "/var/lib/iotedge/hsm/cert.pem",
            privateKey: "/var/lib/iotedge/hsm/key.pem",
          },
        },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [],
    );

    expect((await provisioningInfo(socket)).credentials).toEqual({
      authType: "x509",
      source: "hsm",
      identityCert: "/var/lib/iotedge/hsm/cert.pem",
      identityPrivateKey: "/var/lib/iotedge/hsm/key.pem",
    });

    await stopCleanly(server);
  });

  test("announces a symmetric key kept in iotedged's HSM without sending any key", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const server = await serve(
      folder,
      {
        device: { hubName, deviceId: "tpm-device" },
        credentials: { symmetricKey: { source: "hsm" } },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [],
    );

    expect((await provisioningInfo(socket)).credentials).toEqual({
      authType: "symmetric-key",
      source: "hsm",
    });
    await stopCleanly(server);
  });

  test("answers curl --unix-socket the same as fetch, and logs one line per request", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const server = await serve(folder, symmetricKeyConfig(socket, key), [key]);

    const answer = curlUnix(socket, provisioningPath);
    await server.waitFor("status=200");

    expect(answer.exitCode).toBe(0);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).credentials.key).toBe(key);
    expect(server.output()).toMatch(
      /info {2}request method=GET path=\/device\/provisioninginformation status=200 ms=[\d.]+/,
    );
    await stopCleanly(server);
  });

  test("answers 20 concurrent requests with the same key", async () => {
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const key = newSymmetricKey();
    const keyFile = writeSecret(folder, "device.key", key);
    const server = await serve(
      folder,
      {
        device: { hubName, deviceId: "d" },
        credentials: { symmetricKey: { file: keyFile } },
        listen: { endpoint: socketEndpoint(socket) },
      },
      [key],
    );

    const answers = await Promise.all(Array.from({ length: 20 }, () => provisioningInfo(socket)));

    expect(new Set(answers.map((answer) => answer.credentials.key))).toEqual(
      new Set([readFileSync(keyFile, "utf8")]),
    );
    await stopCleanly(server);
  });
});
