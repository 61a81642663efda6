/**
 * Real credential files for tests: keys from the CSPRNG, certificates from openssl, each
 * written with the mode a device would use.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordSecrets } from "./suite-record.ts";
import { tempDir } from "./temp.ts";

/** A fresh 32-byte key in standard base64, as the IoT hub generates them; recorded as a secret. */
export function newSymmetricKey(): string {
  const key = randomBytes(32).toString("base64");
  recordSecrets([key]);
  return key;
}

/** Writes `content` to `folder/name` with `mode` (default 0600) and returns the path. */
export function writeSecret(
  folder: string,
  name: string,
  content: string | Buffer,
  mode = 0o600,
): string {
  const path = join(folder, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

export interface CertificateFiles {
  certificate: string;
  privateKey: string;
  certificatePem: string;
  privateKeyPem: string;
}

export interface CertificateOptions {
  commonName: string;
  /** openssl genpkey algorithm options; RSA 2048 by default. */
  algorithm?: readonly string[];
  days?: number;
  /** Write the key in PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`) instead of PKCS#8. */
  pkcs1?: boolean;
  /** Issue the certificate as already expired. */
  expired?: boolean;
}

/** A self-signed identity certificate and its key (recorded as a secret), made by openssl. */
export function makeCertificate(options: CertificateOptions): CertificateFiles {
  const folder = tempDir("extprov-cert-");
  const privateKey = join(folder, "device.key.pem");
  const certificate = join(folder, "device.cert.pem");
  const algorithm = options.algorithm ?? ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];

  openssl(["genpkey", ...algorithm, "-out", privateKey]);
  if (options.pkcs1) {
    openssl(["pkey", "-in", privateKey, "-traditional", "-out", `${privateKey}.pkcs1`]);
    renameSync(`${privateKey}.pkcs1`, privateKey);
  }
  const subject = `/CN=${options.commonName}`;

  if (options.expired) {
    signExpired(folder, privateKey, subject, certificate);
  } else {
    const days = String(options.days ?? 365);
    openssl([
      "req",
      "-x509",
      "-new",
      "-key",
      privateKey,
      "-subj",
      subject,
      "-days",
      days,
      "-out",
      certificate,
    ]);
  }

  chmodSync(privateKey, 0o600);
  const privateKeyPem = readFileSync(privateKey, "utf8");
  recordSecrets([privateKeyPem]);

  return {
    certificate,
    privateKey,
    certificatePem: readFileSync(certificate, "utf8"),
    privateKeyPem,
  };
}

/** `openssl req` cannot back-date; `openssl ca -selfsign` takes explicit dates. */
function signExpired(
  folder: string,
  privateKey: string,
  subject: string,
  certificate: string,
): void {
  const request = join(folder, "device.csr");
  const config = join(folder, "ca.cnf");
  writeFileSync(join(folder, "index.txt"), "");
  writeFileSync(join(folder, "serial"), "01\n");
  writeFileSync(
    config,
    [
      "[ca]",
      "default_ca = expired",
      "[expired]",
      `database = ${folder}/index.txt`,
      `new_certs_dir = ${folder}`,
      `serial = ${folder}/serial`,
      "default_md = sha256",
      "policy = any",
      "[any]",
      "commonName = supplied",
    ].join("\n"),
  );

  openssl(["req", "-new", "-key", privateKey, "-subj", subject, "-out", request]);
  openssl([
    "ca",
    "-batch",
    "-config",
    config,
    "-selfsign",
    "-keyfile",
    privateKey,
    "-in",
    request,
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20210101000000Z",
    "-notext",
    "-out",
    certificate,
  ]);
}

/** Runs openssl and fails the test with its message when it fails. */
export function openssl(args: string[]): string {
  const result = Bun.spawnSync(["openssl", ...args], { stderr: "pipe", stdout: "pipe" });
  if (result.exitCode !== 0)
    throw new Error(`openssl ${args[0]} failed: ${result.stderr.toString()}`);
  return result.stdout.toString();
}
