/**
 * X.509 identities sent as payload: the certificate (with any chain after it) and its
 * private key, read from PEM files and sent as the base64 of the PEM text.
 */
import type { X509Certificate, KeyObject } from "node:crypto";
import type { KeyProblem } from "./symmetric-key.ts";

export interface X509Identity {
  /** The PEM text of the certificate file, line endings made LF. */
  certificatePem: string;
  privateKeyPem: string;
  commonName: string | undefined;
  notBefore: Date;
  notAfter: Date;
  chainLength: number;
}

/**
 * node:crypto, loaded on first use: with the stream modules it pulls in, it adds about 2 MiB
 * and a few milliseconds to the start of a device that has no X.509 identity.
 */
function nodeCrypto(): typeof import("node:crypto") {
  return require("node:crypto");
}

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const privateKeyBlock =
  /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/g;
/** Any PEM label ending in PRIVATE KEY (also DSA, OPENSSH, ...): never part of a certificate. */
const anyPrivateKeyLabel = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** Whether a certificate file's text holds a private key, which must never be served. */
export function holdsPrivateKey(text: string): boolean {
  return anyPrivateKeyLabel.test(text);
}

/** Parses a certificate PEM: the identity certificate first, then optional chain certificates. */
export function parseCertificatePem(
  text: string,
): { certificates: X509Certificate[]; pem: string } | KeyProblem {
  const pem = normalizePem(text);
  const blocks = pem.match(certificateBlock) ?? [];

  if (blocks.length === 0) {
    return {
      problem: "holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)",
      hint: "convert a DER certificate with: openssl x509 -inform der -in cert.der -out cert.pem",
    };
  }

  // The certificate file is served whole as identityCert and may be readable by all: a
  // key in it (`cat key.pem cert.pem > combined.pem`) would be handed out with it.
  if (holdsPrivateKey(pem)) {
    return {
      problem: "holds a private key as well as the certificate; it is not served",
      hint: "the private key belongs in the privateKey file only: keep just the certificate and its chain in this file",
    };
  }

  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new (nodeCrypto().X509Certificate)(block));
    } catch {
      return {
        problem: `certificate ${index + 1} in the file cannot be parsed`,
        hint: "check the file is an unmodified PEM certificate",
      };
    }
  }

  return { certificates, pem };
}

/**
 * Parses a private key PEM in PKCS#8, PKCS#1 (RSA) or SEC1 (EC) form; encrypted keys are
 * refused. Only the key block is kept: certificates or EC parameters beside it in the file
 * are not sent as the key.
 */
export function parsePrivateKeyPem(text: string): { key: KeyObject; pem: string } | KeyProblem {
  const blocks = [...normalizePem(text).matchAll(privateKeyBlock)];

  if (blocks.length === 0) {
    return {
      problem: "holds no PEM private key",
      hint: "give the identity certificate's private key in PEM form",
    };
  }

  if (blocks.length > 1) {
    return {
      problem: `holds ${blocks.length} private keys, and iotedged takes one`,
      hint: "keep only the identity certificate's private key in this file",
    };
  }

  const [block, kind] = blocks[0]!;
  const pem = block + "\n";
  if (kind === "ENCRYPTED PRIVATE KEY" || /Proc-Type: 4,ENCRYPTED/.test(pem)) {
    return {
      problem: "the private key is encrypted, and iotedged cannot ask for its passphrase",
      hint: "decrypt it once with: openssl pkey -in key.pem -out key-clear.pem, and keep that file 0600",
    };
  }

  try {
    return { key: nodeCrypto().createPrivateKey({ key: pem, format: "pem" }), pem };
  } catch {
    return {
      problem: "the private key cannot be parsed",
      hint: "check the file is an unmodified PEM private key",
    };
  }
}

/** Checks that the key belongs to the certificate, and collects what is worth a warning. */
export function checkX509Identity(
  certificates: X509Certificate[],
  certificatePem: string,
  key: KeyObject,
  privateKeyPem: string,
): X509Identity | KeyProblem {
  const identity = certificates[0]!;

  if (!identity.checkPrivateKey(key)) {
    const owner = certificates.findIndex((certificate) => certificate.checkPrivateKey(key));
    if (owner > 0) {
      return {
        problem: `the private key belongs to certificate ${owner + 1} in the file, not to the first, which iotedged presents as the device`,
        hint: "put the device's own certificate first in the file, then its chain",
      };
    }

    return {
      problem: "the private key does not belong to the identity certificate",
      hint: "pair each certificate with the key it was issued for; the identity certificate must come first in its file",
    };
  }

  return {
    certificatePem,
    privateKeyPem,
    commonName: commonNameOf(identity),
    notBefore: new Date(identity.validFrom),
    notAfter: new Date(identity.validTo),
    chainLength: certificates.length,
  };
}

/** Warnings that do not stop serving: a device's clock may be unset at boot. */
export function x509Warnings(identity: X509Identity, deviceId: string, now = new Date()): string[] {
  const warnings: string[] = [];

  if (identity.notAfter < now) {
    warnings.push(
      `the identity certificate expired on ${identity.notAfter.toISOString()}; the IoT hub will refuse it`,
    );
  }

  if (identity.notBefore > now) {
    warnings.push(
      `the identity certificate is valid only from ${identity.notBefore.toISOString()}; check the device clock`,
    );
  }

  if (identity.commonName !== deviceId) {
    warnings.push(
      "the identity certificate's subject CN differs from the device id; the IoT hub expects them equal",
    );
  }

  return warnings;
}

/** LF line endings and one final newline: what OpenSSL on the iotedged side expects to read. */
function normalizePem(text: string): string {
  return text.replace(/\r\n?/g, "\n").trim() + "\n";
}

function commonNameOf(certificate: X509Certificate): string | undefined {
  for (const line of certificate.subject.split("\n")) {
    if (line.startsWith("CN=")) return line.slice(3);
  }

  return undefined;
}
