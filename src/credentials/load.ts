/**
 * Reads and checks the configured credential, and combines it with the device section
 * into the answer iotedged receives. Nothing is returned unless all of it is valid.
 */
import { statSync } from "node:fs";
import { checkDeviceField, missingDeviceField, type DeviceField } from "../config/device.ts";
import type { Config, SecretSource } from "../config/load.ts";
import { shownPath } from "../config/shown-path.ts";
import { ConfigError, ConfigErrors } from "../errors.ts";
import type { DeviceProvisioningInfo } from "../http/schemas.ts";
import { parseConnectionString } from "./connection-string.ts";
import { checkSecretFile, readSecretFile, type SecretFileRules } from "./secret-file.ts";
import { checkSymmetricKey, type KeyProblem } from "./symmetric-key.ts";
import {
  checkX509Identity,
  holdsPrivateKey,
  parseCertificatePem,
  parsePrivateKeyPem,
  x509Warnings,
} from "./x509.ts";

export interface LoadedIdentity {
  info: DeviceProvisioningInfo;
  /** Problems that do not stop serving, such as an expired certificate. */
  warnings: string[];
}

type Credential = {
  credentials: DeviceProvisioningInfo["credentials"];
  hubName?: string;
  deviceId?: string;
  /** The certificate's subject CN, the device id when the device section gives none. */
  commonName?: FromCertificate;
  warnings?: (deviceId: string) => string[];
};

type FromCertificate = { value: string; field: string; file: string };

/** Says which part is dropped without repeating its value, as for every connection string part. */
const gatewayHostNameNotServed =
  "the connection string's GatewayHostName is not served: the External Provisioning API has no field for it";

/** Loads the identity a configuration describes; throws `ConfigErrors` on any problem. */
export function loadIdentity(config: Config, trustedOwners: number[]): LoadedIdentity {
  const rules: SecretFileRules = {
    configFile: config.file,
    allowInsecure: config.security.allowInsecureSecretFiles,
    trustedOwners,
  };

  const credential = loadCredential(config, rules);
  const problems: ConfigError[] = [];
  const hubName = pick(config, "hubName", problems, credential.hubName);
  const deviceId = pick(config, "deviceId", problems, credential.deviceId, credential.commonName);
  if (problems.length > 0 || !hubName || !deviceId) throw new ConfigErrors(problems);

  const { status, substatus } = config.device;

  const info: DeviceProvisioningInfo = { hubName, deviceId, credentials: credential.credentials };
  if (status) info.status = status;
  if (substatus) info.substatus = substatus;

  return { info, warnings: credential.warnings?.(deviceId) ?? [] };
}

function loadCredential(config: Config, rules: SecretFileRules): Credential {
  const spec = config.credentials;

  if (spec.kind === "symmetric-key-hsm") {
    return { credentials: { authType: "symmetric-key", source: "hsm" } };
  }

  if (spec.kind === "symmetric-key") {
    const key = orFail(
      checkSymmetricKey(readSecret(spec.key, config, rules)),
      config.file,
      spec.key.field,
      fileOf(spec.key),
    );
    return { credentials: { authType: "symmetric-key", source: "payload", key: key.key } };
  }

  if (spec.kind === "connection-string") {
    const text = readSecret(spec.value, config, rules);
    const connection = orFail(
      parseConnectionString(text),
      config.file,
      spec.value.field,
      fileOf(spec.value),
    );
    return {
      credentials: { authType: "symmetric-key", source: "payload", key: connection.key },
      hubName: connection.hubName,
      deviceId: connection.deviceId,
      warnings: () => (connection.hasGatewayHostName ? [gatewayHostNameNotServed] : []),
    };
  }

  if (spec.source === "hsm") {
    return {
      credentials: {
        authType: "x509",
        source: "hsm",
        identityCert: spec.certificate,
        identityPrivateKey: spec.privateKey,
      },
    };
  }

  return loadX509Payload(spec.certificate, spec.privateKey, config, rules);
}

function loadX509Payload(
  certificateFile: string,
  keyFile: string,
  config: Config,
  rules: SecretFileRules,
): Credential {
  const certField = "/credentials/x509/certificate";
  const keyField = "/credentials/x509/privateKey";

  // A certificate is public, but one others could replace would pair with their key.
  const certText = readSecretFile(certificateFile, certField, {
    ...rules,
    allowInsecure: true,
  }).toString("utf8");
  const certificate = orFail(
    withExposure(parseCertificatePem(certText), certText, certificateFile),
    config.file,
    certField,
    certificateFile,
  );
  const key = orFail(
    parsePrivateKeyPem(readSecretFile(keyFile, keyField, rules).toString("utf8")),
    config.file,
    keyField,
    keyFile,
  );
  const identity = orFail(
    checkX509Identity(certificate.certificates, certificate.pem, key.key, key.pem),
    config.file,
    keyField,
    keyFile,
  );

  return {
    credentials: {
      authType: "x509",
      source: "payload",
      identityCert: Buffer.from(identity.certificatePem).toString("base64"),
      identityPrivateKey: Buffer.from(identity.privateKeyPem).toString("base64"),
    },
    commonName:
      identity.commonName === undefined
        ? undefined
        : { value: identity.commonName, field: certField, file: certificateFile },
    warnings: (deviceId) => x509Warnings(identity, deviceId),
  };
}

/**
 * A certificate file may be readable by all (it is public), so a private key found in it
 * may already have been read: say so, and that the key must be replaced, not only moved.
 */
function withExposure<T extends object>(
  result: T | KeyProblem,
  text: string,
  file: string,
): T | KeyProblem {
  if (!("problem" in result) || !holdsPrivateKey(text)) return result;

  let mode;
  try {
    mode = statSync(file).mode;
  } catch {
    return result;
  }
  if ((mode & 0o004) === 0) return result;

  const octal = (mode & 0o7777).toString(8).padStart(4, "0");
  const exposed = `its mode ${octal} has let every user on the device read that key: treat it as exposed and rotate it (a new key and certificate)`;
  return { problem: result.problem, hint: result.hint ? `${result.hint}; ${exposed}` : exposed };
}

function readSecret(source: SecretSource, config: Config, rules: SecretFileRules): string {
  if ("inline" in source) {
    // A key written into the configuration makes the configuration file a secret too.
    if (config.embedded !== true) checkSecretFile(config.file, source.field, rules);
    return source.inline;
  }

  return readSecretFile(source.file, source.field, rules).toString("utf8");
}

/** The file a secret came from, for messages; undefined when it is inline. */
function fileOf(source: SecretSource): string | undefined {
  return "file" in source ? source.file : undefined;
}

/**
 * The device section and the credential must agree where both name the hub or device;
 * a value only the credential gives is checked here, as the configuration's own were (a
 * connection string's own are checked, and blamed on it, as it is parsed).
 */
function pick(
  config: Config,
  field: DeviceField,
  problems: ConfigError[],
  fromCredential: string | undefined,
  fallback?: FromCertificate,
): string | undefined {
  const configured = config.device[field];
  const fail = (problem: string, hint: string) => {
    problems.push(new ConfigError(config.file, `/device/${field}`, problem, hint));
    return undefined;
  };

  if (configured !== undefined && fromCredential !== undefined && configured !== fromCredential) {
    return fail(
      "differs from the connection string",
      "remove it from the device section, or make them equal",
    );
  }

  if (configured === undefined && fromCredential === undefined && fallback) {
    const problem = checkDeviceField(field, fallback.value);
    if (!problem) return fallback.value;
    problems.push(
      new ConfigError(
        config.file,
        fallback.field,
        `${fallback.file}: the certificate's subject CN, taken as the device id, ${problem.problem}`,
        `set device.${field} to the device's id`,
      ),
    );
    return undefined;
  }

  const value = configured ?? fromCredential;
  const problem =
    value === undefined || value === ""
      ? missingDeviceField(field)
      : checkDeviceField(field, value);
  return problem ? fail(problem.problem, problem.hint) : value;
}

function orFail<T extends object>(
  result: T | KeyProblem,
  file: string,
  field: string,
  path?: string,
): T {
  if (!("problem" in result)) return result;

  const where = path ? `${shownPath(path)}: ` : "";
  throw new ConfigErrors([new ConfigError(file, field, where + result.problem, result.hint)]);
}
