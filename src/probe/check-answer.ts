/**
 * iotedged 1.1's checks on a DeviceProvisioningInfo answer, as its code applies them:
 * serde's required fields and types (external-provisioning/src/models), then
 * provisioning.rs (status must parse, authType and source must be known, a payload key
 * must decode as base64) and configure_external_provisioning in iotedged's lib.rs (x509
 * payloads are base64 of PEM files). A problem throws `ProbeError`; values are never
 * repeated, since any of them may be a secret.
 */
import { ProbeError } from "../errors.ts";
import { checkSymmetricKey } from "../credentials/symmetric-key.ts";
import {
  checkX509Identity,
  holdsPrivateKey,
  parseCertificatePem,
  parsePrivateKeyPem,
  x509Warnings,
} from "../credentials/x509.ts";
import type { DeviceProvisioningInfo } from "../http/schemas.ts";

const statuses = ["assigned", "assigning", "disabled", "failed", "unassigned"];
// iotedged maps any other substatus to initialAssignment (ReprovisioningStatus::from).
const substatuses = [
  "deviceDataMigrated",
  "deviceDataReset",
  "initialAssignment",
  "deviceDataUpdated",
  "reprovisionedToInitialAssignment",
];
const authTypes = ["symmetric-key", "x509"] as const;
const sources = ["payload", "hsm"] as const;
const knownFields = ["hubName", "deviceId", "credentials", "status", "substatus"];
const knownCredentialFields = ["authType", "source", "key", "identityCert", "identityPrivateKey"];
const standardBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface Verdict {
  /** The answer reduced to the API's fields, ready for `maskedInfo`. */
  info: DeviceProvisioningInfo;
  /** What iotedged accepts but a person should know. */
  warnings: string[];
}

/** Checks the body of a 2xx answer; throws `ProbeError` naming the first field iotedged rejects. */
export function checkAnswer(body: string): Verdict {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    // The parser's message quotes the text it stopped at, which may be a key.
    throw new ProbeError(
      "the answer is not valid JSON",
      "iotedged parses the body as a DeviceProvisioningInfo object",
    );
  }

  const answer = object(document, "the answer");
  const warnings = unknownFields(answer, knownFields, "");
  const hubName = text(answer, "hubName", true)!;
  const deviceId = text(answer, "deviceId", true)!;
  const status = optionalEnum(answer, "status", statuses, "iotedged refuses any other status");
  const substatus = text(answer, "substatus", false);
  if (substatus !== undefined && !substatuses.includes(substatus)) {
    warnings.push(
      `substatus ${quote(substatus)} is not one iotedged knows; it treats it as initialAssignment`,
    );
  }

  const credentials = object(answer.credentials, "credentials");
  warnings.push(...unknownFields(credentials, knownCredentialFields, "credentials."));
  const authType = requiredEnum(credentials, "authType", authTypes);
  const source = requiredEnum(credentials, "source", sources);
  const fields = {
    key: text(credentials, "key", false, "credentials."),
    identityCert: text(credentials, "identityCert", false, "credentials."),
    identityPrivateKey: text(credentials, "identityPrivateKey", false, "credentials."),
  };

  const checked = checkCredentials(authType, source, fields, deviceId);
  const info: DeviceProvisioningInfo = {
    hubName,
    deviceId,
    credentials: { authType, source, ...defined(fields) },
  };
  if (status !== undefined) info.status = status as DeviceProvisioningInfo["status"];
  if (substatus !== undefined) info.substatus = substatus as DeviceProvisioningInfo["substatus"];

  return { info, warnings: [...warnings, ...checked] };
}

type CredentialFields = { key?: string; identityCert?: string; identityPrivateKey?: string };

function checkCredentials(
  authType: "symmetric-key" | "x509",
  source: "payload" | "hsm",
  fields: CredentialFields,
  deviceId: string,
): string[] {
  if (authType === "symmetric-key" && source === "payload") return checkKey(fields.key);
  if (authType === "symmetric-key") {
    return [
      "credentials: symmetric-key from hsm: iotedged signs with the key in its TPM, not one from this answer",
    ];
  }
  if (source === "payload") return checkX509Payload(fields, deviceId);

  for (const name of ["identityCert", "identityPrivateKey"] as const) {
    if (!fields[name]) {
      throw new ProbeError(
        `credentials.${name} is missing or empty`,
        "for x509 from hsm it is the path iotedged opens; an empty one cannot be opened",
      );
    }
  }

  return (["identityCert", "identityPrivateKey"] as const)
    .filter((name) => !fields[name]!.startsWith("/"))
    .map(
      (name) =>
        `credentials.${name} is not an absolute path; iotedged opens it from its own working folder`,
    );
}

function checkKey(key: string | undefined): string[] {
  if (key === undefined) {
    throw new ProbeError(
      "credentials.key is missing",
      "symmetric-key from payload needs the key (iotedged: SymmetricKeyNotSpecified)",
    );
  }

  const checked = checkSymmetricKey(key);
  if ("problem" in checked) {
    throw new ProbeError(`credentials.key: ${checked.problem}`, checked.hint);
  }
  if (checked.key !== key) {
    throw new ProbeError("credentials.key has white space around it", "send the key alone");
  }
  return [];
}

function checkX509Payload(fields: CredentialFields, deviceId: string): string[] {
  const certificatePem = decodePem(
    fields.identityCert,
    "identityCert",
    /-----BEGIN CERTIFICATE-----/,
    "a PEM certificate",
  );
  const privateKeyPem = decodePem(
    fields.identityPrivateKey,
    "identityPrivateKey",
    /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    "a PEM private key",
  );

  // iotedged would take it, but a certificate is no secret and is handled as none.
  if (holdsPrivateKey(certificatePem)) {
    throw new ProbeError(
      "credentials.identityCert holds a private key as well as the certificate",
      "the endpoint hands the key out where no secret is expected; it belongs in identityPrivateKey only",
    );
  }

  const certificate = parseCertificatePem(certificatePem);
  if ("problem" in certificate) {
    throw new ProbeError(`credentials.identityCert: ${certificate.problem}`, certificate.hint);
  }
  const key = parsePrivateKeyPem(privateKeyPem);
  if ("problem" in key) {
    throw new ProbeError(`credentials.identityPrivateKey: ${key.problem}`, key.hint);
  }

  const identity = checkX509Identity(certificate.certificates, certificate.pem, key.key, key.pem);
  if ("problem" in identity) {
    throw new ProbeError(`credentials: ${identity.problem}`, identity.hint);
  }
  return x509Warnings(identity, deviceId);
}

function decodePem(
  value: string | undefined,
  name: string,
  header: RegExp,
  expected: string,
): string {
  if (value === undefined) {
    throw new ProbeError(
      `credentials.${name} is missing`,
      "x509 from payload needs the certificate and its private key",
    );
  }

  if (!standardBase64.test(value) || value === "") {
    throw new ProbeError(
      `credentials.${name} is not valid standard base64`,
      "send the base64 of the PEM file, A-Z a-z 0-9 + / with = padding",
    );
  }

  const pem = Buffer.from(value, "base64").toString("utf8");
  if (!header.test(pem)) {
    throw new ProbeError(
      `credentials.${name} does not decode to ${expected}`,
      "send the base64 of the PEM text, not of DER",
    );
  }
  return pem;
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const problem = value === undefined ? `${name} is missing` : `${name} is not a JSON object`;
    throw new ProbeError(
      problem,
      "iotedged expects DeviceProvisioningInfo: hubName, deviceId, credentials",
    );
  }

  return value as Record<string, unknown>;
}

function text(
  record: Record<string, unknown>,
  name: string,
  required: boolean,
  prefix = "",
): string | undefined {
  const value = record[name];
  if (value === undefined || value === null) {
    if (required) throw new ProbeError(`${prefix}${name} is missing`, "iotedged requires it");
    return undefined;
  }

  if (typeof value !== "string") {
    throw new ProbeError(`${prefix}${name} is not a string`, "iotedged cannot parse the answer");
  }
  if (required && value === "") {
    throw new ProbeError(`${prefix}${name} is empty`, "iotedged needs a value");
  }
  return value;
}

function requiredEnum<T extends string>(
  record: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
): T {
  const value = text(record, name, true, "credentials.")!;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ProbeError(
      `credentials.${name} ${quote(value)} is not one of ${allowed.join(", ")}`,
      "iotedged refuses the answer",
    );
  }

  return value as T;
}

function optionalEnum(
  record: Record<string, unknown>,
  name: string,
  allowed: readonly string[],
  hint: string,
): string | undefined {
  const value = text(record, name, false);
  if (value !== undefined && !allowed.includes(value)) {
    throw new ProbeError(`${name} ${quote(value)} is not one of ${allowed.join(", ")}`, hint);
  }

  return value;
}

function unknownFields(
  record: Record<string, unknown>,
  known: readonly string[],
  prefix: string,
): string[] {
  return Object.keys(record)
    .filter((name) => !known.includes(name))
    .map((name) => `${prefix}${quote(name)} is not in the API; iotedged ignores it`);
}

/** A short word such as an enum value; anything that could be key material is not repeated. */
function quote(value: string): string {
  return /^[A-Za-z][A-Za-z_-]{0,31}$/.test(value) ? `"${value}"` : "(value not shown)";
}

function defined(fields: CredentialFields): CredentialFields {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}
