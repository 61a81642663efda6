/**
 * What the endpoint serves, prepared once per loaded configuration: the answer is checked
 * against the API schema and serialized here, so a request only copies bytes.
 */
import { Value } from "@sinclair/typebox/value";
import { DeviceProvisioningInfo } from "../http/schemas.ts";
import type { LoadedIdentity } from "../credentials/load.ts";

export interface ProvisioningState {
  info: DeviceProvisioningInfo;
  /**
   * The JSON answer, serialized once. Kept as text: Bun sends a string body as it is, but
   * copies a byte array for every Response made from it.
   */
  body: string;
  warnings: string[];
  /**
   * True when a reload while running changed the hub or the device, and the status and
   * substatus follow `reprovision.afterIdentityChange` (see identity-change.ts).
   */
  identityChanged?: boolean;
}

/** Prepares a loaded identity for serving; throws if it would break the API's schema. */
export function prepareState(identity: LoadedIdentity): ProvisioningState {
  if (!Value.Check(DeviceProvisioningInfo, identity.info)) {
    // Unreachable when the loaders are right; guards the promise made to iotedged.
    throw new Error("the prepared answer does not match the API schema");
  }

  const body = JSON.stringify(identity.info);
  return { info: identity.info, body, warnings: identity.warnings };
}

/** The secret values in an answer, and the PEM lines inside them, to keep out of logs. */
export function secretsOf(info: DeviceProvisioningInfo): string[] {
  const { credentials } = info;
  if (credentials.source !== "payload") return [];

  const encoded = [
    credentials.key,
    credentials.identityCert,
    credentials.identityPrivateKey,
  ].filter((value): value is string => value !== undefined);
  const privateKeyLines = credentials.identityPrivateKey
    ? Buffer.from(credentials.identityPrivateKey, "base64")
        .toString("utf8")
        .split("\n")
        .filter((line) => !line.startsWith("-----"))
    : [];

  return [
    ...encoded,
    ...privateKeyLines.map((line) => line.trim()).filter((line) => line.length >= 16),
  ];
}

/** The answer with every secret replaced by its length and a short fingerprint. */
export function maskedInfo(info: DeviceProvisioningInfo): DeviceProvisioningInfo {
  const { credentials } = info;
  const masked = { ...credentials };

  if (credentials.key) masked.key = mask(credentials.key);
  if (credentials.source === "payload" && credentials.identityCert) {
    masked.identityCert = mask(credentials.identityCert);
  }

  if (credentials.source === "payload" && credentials.identityPrivateKey) {
    masked.identityPrivateKey = mask(credentials.identityPrivateKey);
  }

  return { ...info, credentials: masked };
}

/**
 * A masked secret: enough to tell two keys apart after a rotation, nothing to rebuild one.
 * The fingerprint is the first 8 hex digits of the SHA-256 of the value.
 */
export function mask(secret: string): string {
  const fingerprint = new Bun.CryptoHasher("sha256").update(secret).digest("hex").slice(0, 8);
  return `<secret: ${secret.length} characters, sha256 ${fingerprint}>`;
}
