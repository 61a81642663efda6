/**
 * The API definitions that every answer in test/http/ is checked against: the transcription
 * in test/fixtures/ must match the official swagger, and the validator must refuse answers
 * that break it, or a passing conformance check would prove nothing.
 */
import { describe, expect, test } from "bun:test";
import {
  apiDefinitions,
  definitionsFixture,
  officialDefinitions,
  officialSwagger,
  swaggerFileName,
  swaggerFolders,
  swaggerViolations,
} from "../helpers/swagger.ts";

const comparison = officialSwagger
  ? `the transcribed definitions equal those of the official swagger at ${officialSwagger}`
  : `the transcribed definitions equal the official swagger's: skipped, no ${swaggerFileName} ` +
    `in ${swaggerFolders.join(" or ")} (set EXTPROV_SPEC_DIR to its folder)`;

describe("the API definitions answers are checked against", () => {
  test("name where they were transcribed from", async () => {
    const fixture = await Bun.file(definitionsFixture).json();

    expect(fixture.$comment).toContain("Azure/iotedge");
    expect(fixture.$comment).toContain(swaggerFileName);
    expect(Object.keys(apiDefinitions).sort()).toEqual([
      "Credentials",
      "DeviceProvisioningInfo",
      "ErrorResponse",
    ]);
  });

  test.skipIf(!officialSwagger)(comparison, () => {
    expect(apiDefinitions).toEqual(officialDefinitions(officialSwagger!));
  });
});

describe("the answer validator", () => {
  const symmetricKey = {
    hubName: "hub.azure-devices.net",
    deviceId: "device01",
    credentials: { authType: "symmetric-key", source: "payload", key: "a2V5" },
    status: "assigned",
    substatus: "deviceDataReset",
  };
  const x509Hsm = {
    hubName: "hub.azure-devices.net",
    deviceId: "device01",
    credentials: {
      authType: "x509",
      source: "hsm",
      identityCert: "/etc/certs/device.pem",
      identityPrivateKey: "/etc/certs/device.key.pem",
    },
  };

  test("accepts answers that follow the definitions", () => {
    expect(swaggerViolations("DeviceProvisioningInfo", symmetricKey)).toEqual([]);
    expect(swaggerViolations("DeviceProvisioningInfo", x509Hsm)).toEqual([]);
    expect(swaggerViolations("ErrorResponse", { message: "no such path" })).toEqual([]);
  });

  const wrong: [string, string, unknown, string[]][] = [
    [
      "required fields left out",
      "DeviceProvisioningInfo",
      { deviceId: "d" },
      ["/hubName: missing", "/credentials: missing"],
    ],
    [
      "a status the API does not list",
      "DeviceProvisioningInfo",
      { ...symmetricKey, status: "active" },
      ["/status: not one of assigned, assigning, disabled, failed, unassigned"],
    ],
    [
      "an authType the API does not list",
      "DeviceProvisioningInfo",
      { ...symmetricKey, credentials: { authType: "sas", source: "payload" } },
      ["/credentials/authType: not one of symmetric-key, x509"],
    ],
    [
      "credentials without a source",
      "DeviceProvisioningInfo",
      { ...symmetricKey, credentials: { authType: "x509" } },
      ["/credentials/source: missing"],
    ],
    [
      "a number where a string belongs",
      "DeviceProvisioningInfo",
      { ...symmetricKey, deviceId: 7 },
      ["/deviceId: not a string"],
    ],
    [
      "a field the API does not define",
      "DeviceProvisioningInfo",
      { ...symmetricKey, gatewayHostName: "gw.local" },
      ["/gatewayHostName: not in the definition"],
    ],
    [
      "credentials given as a string",
      "DeviceProvisioningInfo",
      { ...symmetricKey, credentials: "symmetric-key" },
      ["/credentials: not an object"],
    ],
    ["a list instead of an object", "DeviceProvisioningInfo", [symmetricKey], [": not an object"]],
    ["an error without its message", "ErrorResponse", { error: "x" }, ["/message: missing"]],
    [
      "an error message that is not text",
      "ErrorResponse",
      { message: 404 },
      ["/message: not a string"],
    ],
  ];

  for (const [what, definition, answer, expected] of wrong) {
    test(`refuses ${what}`, () => {
      const found = swaggerViolations(definition, answer);

      for (const violation of expected) expect(found).toContain(violation);
      expect(found.length).toBeGreaterThan(0);
    });
  }

  test("refuses to check against a definition it does not have", () => {
    expect(() => swaggerViolations("DeviceInfo", {})).toThrow("no definition named DeviceInfo");
  });
});
