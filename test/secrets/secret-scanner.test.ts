/**
 * The scanner behind the whole-run secret check (test/preload.ts): it must find a secret
 * cut short, a PEM body line, a connection string, and nothing in unrelated text.
 */
import { describe, expect, test } from "bun:test";
import { SecretScanner } from "../helpers/secrets.ts";

// Made here, not by the fixtures, so the run's record does not hold them as secrets.
const key = Buffer.from("a fixed key for the scanner test!").toString("base64");
const pemLine = Buffer.from("a made-up line of a private key's PEM body").toString("base64");
const pem = `-----BEGIN PRIVATE KEY-----\n${pemLine}\n-----END PRIVATE KEY-----\n`;
const connectionString = `HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=${key}`;

describe("the secret scanner", () => {
  const scanner = new SecretScanner([key, pem, connectionString]);

  test("finds 24 characters cut from the middle of a key", () => {
    expect(scanner.leaks(`reason: bad value ${key.slice(10, 34)} here`)).toEqual([0]);
  });

  test("finds a line of a PEM body, not its BEGIN line", () => {
    expect(scanner.leaks(`dump ${pemLine.slice(3, 40)}`)).toEqual([1]);
    expect(scanner.leaks("-----BEGIN PRIVATE KEY-----")).toEqual([]);
  });

  test("finds a connection string whole, and its key through the key", () => {
    expect(scanner.leaks(connectionString)).toEqual([0, 2]);
  });

  test("finds nothing in a log line without them", () => {
    expect(
      scanner.leaks("2026-01-01T00:00:00.000Z info  request method=GET path=/device status=200"),
    ).toEqual([]);
  });
});
