/**
 * Credential files as a device holds them: modes, owners, encodings and PEM variants.
 * Each is run through `extprov check`, the same load `serve` does, as a real process.
 */
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { writeConfig } from "../helpers/config.ts";
import { makeCertificate, newSymmetricKey, openssl, writeSecret } from "../helpers/fixtures.ts";
import { runExtprov } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";
import { giveToSharedGroup } from "../helpers/users.ts";

const hub = "test-hub.azure-devices.net";
const device = { hubName: hub, deviceId: "cred-device" };
const isRoot = process.getuid?.() === 0;

async function check(
  folder: string,
  credentials: Record<string, unknown>,
  secrets: string[],
  extra = {},
) {
  const file = writeConfig(folder, { device, credentials, ...extra });
  const result = await runExtprov({ args: ["check", "--config", file], secrets });
  return { ...result, file };
}

async function checkKeyFile(
  content: string,
  mode = 0o600,
  extra = {},
  prepare: (path: string) => void = () => {},
) {
  const folder = tempDir();
  const path = writeSecret(folder, "device.key", content, mode);
  prepare(path);
  return {
    ...(await check(folder, { symmetricKey: { file: path } }, [content.trim()], extra)),
    path,
  };
}

/** A key file in `name`, a folder with `mode` inside a new temporary folder. */
function keyInFolderWithMode(name: string, mode: number) {
  const folder = tempDir();
  const inner = join(folder, name);
  mkdirSync(inner);
  chmodSync(inner, mode);
  const key = newSymmetricKey();
  return { folder, inner, key, path: writeSecret(inner, "device.key", key) };
}

describe("a symmetric key file", () => {
  test("with a trailing newline and mode 0600 is accepted", async () => {
    expect((await checkKeyFile(`${newSymmetricKey()}\n`)).code).toBe(0);
  });

  test("readable by its group (0640, as root:extprov) is accepted", async () => {
    expect((await checkKeyFile(newSymmetricKey(), 0o640)).code).toBe(0);
  });

  test("readable by every user is refused with the mode and the fix", async () => {
    const result = await checkKeyFile(newSymmetricKey(), 0o644);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/symmetricKey/file: ${result.path}: mode 0644 lets every user on the device use it; chmod 0600 it`,
    );
  });

  test.skipIf(!isRoot)("readable by a group other users belong to is refused", async () => {
    const result = await checkKeyFile(newSymmetricKey(), 0o640, {}, giveToSharedGroup);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `${result.path}: mode 0640 lets group 1, which other users belong to, read it; chmod 0600 it, or give it to the service user's own group`,
    );
  });

  test.skipIf(!isRoot)("writable by a group other users belong to is refused", async () => {
    const result = await checkKeyFile(newSymmetricKey(), 0o660, {}, giveToSharedGroup);

    expect(result.code).toBe(3);
    expect(result.output).toContain("mode 0660 lets its group change it");
  });

  test("readable by every user is accepted with security.allowInsecureSecretFiles, for file systems without modes", async () => {
    expect(
      (
        await checkKeyFile(newSymmetricKey(), 0o644, {
          security: { allowInsecureSecretFiles: true },
        })
      ).code,
    ).toBe(0);
  });

  // Who may rename it away may put another key in its place: the device's identity.
  test("in a folder every user may write is refused, naming the folder", async () => {
    const { folder, inner: open, key, path } = keyInFolderWithMode("open", 0o777);

    const result = await check(folder, { symmetricKey: { file: path } }, [key]);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/symmetricKey/file: ${path}: ${open}, a folder on its path, has mode 0777: other users may put another secret in its place; chmod go-w ${open}, or keep the secrets in a folder only root or the service user may change (as install.sh makes /etc/extprov/secrets)`,
    );
  });

  test("in a sticky folder every user may write (like /tmp) is accepted when root owns it", async () => {
    const { folder, key, path } = keyInFolderWithMode("tmp", 0o1777);

    expect((await check(folder, { symmetricKey: { file: path } }, [key])).code).toBe(0);
  });

  test("in a folder every user may write is accepted with security.allowInsecureSecretFiles", async () => {
    const { folder, key, path } = keyInFolderWithMode("open", 0o777);
    const security = { security: { allowInsecureSecretFiles: true } };

    expect((await check(folder, { symmetricKey: { file: path } }, [key], security)).code).toBe(0);
  });

  test("that is empty is refused", async () => {
    const result = await checkKeyFile("\n");

    expect(result.code).toBe(3);
    expect(result.output).toContain(": is empty; write the secret into it");
  });

  test("that is missing is refused", async () => {
    const folder = tempDir();
    const result = await check(folder, { symmetricKey: { file: "missing.key" } }, []);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `${folder}/<the rest, not shown as it may be a secret>: does not exist`,
    );
  });

  test("given as a relative path is found beside the configuration", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    mkdirSync(join(folder, "secrets"));
    writeSecret(join(folder, "secrets"), "device.key", key);

    expect(
      (await check(folder, { symmetricKey: { file: "secrets/device.key" } }, [key])).code,
    ).toBe(0);
  });

  test("reached through a symbolic link is accepted, checked by the target's mode", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const target = writeSecret(folder, "real.key", key);
    symlinkSync(target, join(folder, "device.key"));

    expect((await check(folder, { symmetricKey: { file: "device.key" } }, [key])).code).toBe(0);
  });

  test("that is a chain of symbolic links to nothing is refused, naming what of the target exists", async () => {
    const folder = tempDir();
    symlinkSync("device.key.current", join(folder, "device.key"));
    symlinkSync("secrets/device.key", join(folder, "device.key.current"));

    const result = await check(folder, { symmetricKey: { file: "device.key" } }, []);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/symmetricKey/file: ${join(folder, "device.key")}: is a symbolic link whose target ${folder}/<the rest, not shown as it may be a secret> does not exist; create the target, or point the link`,
    );
  });

  test("over 1 MiB is refused unread", async () => {
    const folder = tempDir();
    const path = writeSecret(folder, "device.key", "A".repeat(1024 * 1024 + 4));

    const result = await check(folder, { symmetricKey: { file: path } }, []);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `${path}: is 1048580 bytes, too large for a key or certificate (limit 1048576)`,
    );
  });

  test("that is a FIFO is refused without being opened", async () => {
    const folder = tempDir();
    const path = join(folder, "device.key");
    Bun.spawnSync(["mkfifo", "-m", "0600", path]);

    const result = await check(folder, { symmetricKey: { file: path } }, []);

    expect(result.code).toBe(3);
    expect(result.output).toContain(`${path}: is not a regular file`);
  });

  test("that is a folder is refused", async () => {
    const folder = tempDir();
    mkdirSync(join(folder, "device.key"));

    const result = await check(folder, { symmetricKey: { file: "device.key" } }, []);

    expect(result.output).toContain("is not a regular file");
  });

  test.skipIf(!isRoot)("owned by another user, who could replace it, is refused", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const path = writeSecret(folder, "device.key", key);
    chownSync(path, 65534, 65534);

    const result = await check(folder, { symmetricKey: { file: path } }, [key]);

    expect(result.code).toBe(3);
    expect(result.output).toContain("is owned by uid 65534, who could change or replace it");
  });
});

describe("a symmetric key's encoding", () => {
  const bad = [
    ["not base64", "not-base64!!", "is not valid standard base64"],
    [
      "URL-safe base64",
      "ab-_cd-_ef-_gh-_ij-_kl-_mn-_op-_qr-_st-_uvw=",
      "is URL-safe base64, which iotedged does not decode",
    ],
    ["cut short (no padding)", newSymmetricKey().slice(0, -1), "is not valid standard base64"],
    ["broken by a space", "AAAA AAAA", "contains white space"],
    [
      "valid base64 of 15 bytes, as a key file cut short",
      newSymmetricKey().slice(0, 20),
      "decodes to 15 bytes, shorter than IoT Hub device keys (16 to 64 bytes; its own are 32); the key may be cut short; copy the device's primary key again",
    ],
    [
      "valid base64 of 100 bytes, longer than any IoT Hub key",
      randomBytes(100).toString("base64"),
      "decodes to 100 bytes, longer than IoT Hub device keys (16 to 64 bytes; its own are 32); it should hold one device key and nothing else; copy the device's primary key again",
    ],
  ] as const;

  for (const [what, key, message] of bad) {
    test(`is refused when it is ${what}`, async () => {
      const folder = tempDir();
      const result = await check(folder, { symmetricKey: { key } }, []);

      expect(result.code).toBe(3);
      expect(result.output).toContain(`/credentials/symmetricKey/key: the key ${message}`);
    });
  }
});

describe("a connection string", () => {
  const key = newSymmetricKey();
  const pastedKey = newSymmetricKey();
  const device = `HostName=${hub};DeviceId=cred-device`;
  const bad = [
    [
      "missing its key",
      `HostName=${hub};DeviceId=d`,
      "the connection string has no SharedAccessKey",
    ],
    [
      "a hub's shared access policy string",
      `HostName=${hub};SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`,
      "this is a hub's connection string (it has SharedAccessKeyName, a shared access policy), not a device's; copy the device's own connection string from its page in the IoT hub",
    ],
    [
      "a module's",
      `${device};ModuleId=m;SharedAccessKey=${key}`,
      "this is a module's connection string (it has ModuleId), not a device's; copy the device's own connection string",
    ],
    [
      "for X.509",
      `${device};x509=true`,
      "this is an X.509 device's connection string (x509=true): it carries no key; configure credentials.x509",
    ],
    [
      "given an unknown part",
      `${device};SharedAccessKey=${key};Region=value-not-shown`,
      "the connection string has a part named Region, which a device's does not; remove it; a device connection string has only HostName, DeviceId, SharedAccessKey, GatewayHostName",
    ],
    [
      "given a part name in the wrong case",
      `hostname=${hub};DeviceId=cred-device;SharedAccessKey=${key}`,
      "the connection string has a part named hostname, which a device's does not; part names are case-sensitive: write HostName",
    ],
    [
      "given a second key as a part of its own",
      `${device};SharedAccessKey=${key};${pastedKey}`,
      "the connection string has a part whose name looks like a value (not shown), which a device's does not",
    ],
    [
      "given a part twice",
      `${device};SharedAccessKey=${key};DeviceId=value-not-shown`,
      "the connection string has DeviceId more than once; keep one",
    ],
    ["not Name=value", "just some text", "a part of the connection string is not Name=value"],
    [
      "wrapped in double quotes",
      `"${device};SharedAccessKey=${key}"`,
      "the connection string is wrapped in quotes; remove the quotes: it is HostName=...;DeviceId=...;SharedAccessKey=... as is",
    ],
    [
      "wrapped in single quotes",
      `'${device};SharedAccessKey=${key}'`,
      "the connection string is wrapped in quotes; remove the quotes",
    ],
    [
      "wrapped in typographic quotes",
      `\u201c${device};SharedAccessKey=${key}\u201d`,
      "the connection string is wrapped in quotes; remove the quotes",
    ],
    [
      "ending with a quote",
      `${device};SharedAccessKey=${key}"`,
      "the connection string ends with a quote; remove the quotes",
    ],
    [
      "ending in a quoted key",
      `${device};SharedAccessKey="${key}"`,
      "the connection string's SharedAccessKey is in quotes; remove the quotes",
    ],
    [
      "ending in a quoted part of another kind of string",
      `${device};SharedAccessKey=${key};value-not-shown="x"`,
      "the connection string ends with a quote; remove the quotes",
    ],
  ] as const;

  for (const [what, value, message] of bad) {
    test(`is refused when it is ${what}, without its key or values`, async () => {
      const folder = tempDir();
      const result = await check(folder, { connectionString: { value } }, [value, key, pastedKey]);

      expect(result.code).toBe(3);
      expect(result.output).toContain(`/credentials/connectionString/value: ${message}`);
      expect(result.output).not.toContain("value-not-shown");
    });
  }

  const badIdentity = [
    [
      "HostName",
      `HostName=bad host-not-shown!;DeviceId=d;SharedAccessKey=${key}`,
      "the connection string's HostName is not a host name; give the hub's host name, e.g. myhub.azure-devices.net",
    ],
    [
      "DeviceId",
      `HostName=${hub};DeviceId=bad id-not-shown#;SharedAccessKey=${key}`,
      "the connection string's DeviceId is not a valid IoT Hub device id; use up to 128 letters",
    ],
  ] as const;

  for (const [part, value, message] of badIdentity) {
    test(`with a bad ${part} and no device section is refused at the string, not the device section`, async () => {
      const folder = tempDir();
      const file = writeConfig(folder, { credentials: { connectionString: { value } } });

      const result = await runExtprov({ args: ["check", "--config", file], secrets: [value, key] });

      expect(result.code).toBe(3);
      expect(result.output).toContain(`${file}: /credentials/connectionString/value: ${message}`);
      expect(result.output).not.toContain("/device/");
      expect(result.output).not.toContain("not-shown");
    });
  }

  test("in a file with a bad HostName is refused naming the file and the part", async () => {
    const folder = tempDir();
    const value = `HostName=bad host-not-shown!;DeviceId=d;SharedAccessKey=${key}`;
    const path = writeSecret(folder, "device.cs", value);
    const file = writeConfig(folder, { credentials: { connectionString: { file: path } } });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [value, key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/connectionString/file: ${path}: the connection string's HostName is not a host name`,
    );
    expect(result.output).not.toContain("not-shown");
  });

  test("in a file, wrapped in quotes, is refused saying to remove them, without its values", async () => {
    const folder = tempDir();
    const value = `"${device};SharedAccessKey=${key}"`;
    const path = writeSecret(folder, "device.cs", `${value}\n`);
    const file = writeConfig(folder, { credentials: { connectionString: { file: path } } });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [value, key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/connectionString/file: ${path}: the connection string is wrapped in quotes; remove the quotes`,
    );
    expect(result.output).not.toContain("looks like a value");
    expect(result.output).not.toContain("cred-device");
  });

  test("is accepted with a GatewayHostName, which is not served, with a warning", async () => {
    const folder = tempDir();
    const value = `${device};SharedAccessKey=${key};GatewayHostName=gateway-not-shown.local`;

    const result = await check(folder, { connectionString: { value } }, [value, key]);

    expect(result.code).toBe(0);
    expect(result.output).toContain(
      "warning: the connection string's GatewayHostName is not served: the External Provisioning API has no field for it",
    );
    expect(result.output).not.toContain("gateway-not-shown");
  });
});

describe("an X.509 payload identity", () => {
  async function checkPair(
    certificate: string,
    privateKey: string,
    secrets: string[],
    deviceId = "x509-device",
  ) {
    const folder = tempDir();
    const file = writeConfig(folder, {
      device: { hubName: device.hubName, deviceId },
      credentials: { x509: { source: "payload", certificate, privateKey } },
    });
    const result = await runExtprov({ args: ["check", "--config", file], secrets });
    return result;
  }

  const keyKinds = [
    ["an RSA key in PKCS#8", { algorithm: undefined }],
    ["an RSA key in PKCS#1", { pkcs1: true }],
    ["an EC P-256 key", { algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] }],
    ["an Ed25519 key", { algorithm: ["-algorithm", "ED25519"] }],
  ] as const;

  for (const [what, options] of keyKinds) {
    test(`with ${what} is accepted`, async () => {
      const files = makeCertificate({ commonName: "x509-device", ...options });

      const result = await checkPair(files.certificate, files.privateKey, [files.privateKeyPem]);

      expect(result.code).toBe(0);
      expect(result.output).not.toContain("warning");
    });
  }

  test("with a key from another certificate is refused", async () => {
    const one = makeCertificate({ commonName: "x509-device" });
    const other = makeCertificate({ commonName: "x509-device" });

    const result = await checkPair(one.certificate, other.privateKey, [other.privateKeyPem]);

    expect(result.code).toBe(3);
    expect(result.output).toContain("the private key does not belong to the identity certificate");
  });

  test("whose key belongs to the second certificate in the file, not the first, says which", async () => {
    const issuer = makeCertificate({
      commonName: "issuer",
      algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    });
    const identity = makeCertificate({ commonName: "x509-device" });
    const folder = tempDir();
    const certificate = writeSecret(
      folder,
      "chain.pem",
      issuer.certificatePem + identity.certificatePem,
      0o644,
    );

    const result = await checkPair(certificate, identity.privateKey, [
      identity.privateKeyPem,
      issuer.privateKeyPem,
    ]);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/x509/privateKey: ${identity.privateKey}: the private key belongs to certificate 2 in the file, not to the first, which iotedged presents as the device; put the device's own certificate first`,
    );
    expect(result.output.match(/check failed/g)?.length).toBe(1);
  });

  const emptyFiles = [
    ["certificate", "/credentials/x509/certificate"],
    ["privateKey", "/credentials/x509/privateKey"],
  ] as const;

  for (const [which, field] of emptyFiles) {
    test(`with an empty ${which} file is refused, naming the field`, async () => {
      const files = makeCertificate({ commonName: "x509-device" });
      const empty = writeSecret(tempDir(), "empty.pem", "");
      const [certificate, privateKey] =
        which === "certificate" ? [empty, files.privateKey] : [files.certificate, empty];

      const result = await checkPair(certificate, privateKey, [files.privateKeyPem]);

      expect(result.code).toBe(3);
      expect(result.output).toContain(`${field}: ${empty}: is empty; write the secret into it`);
    });
  }

  test("with a private key file of random bytes is refused without repeating them", async () => {
    const files = makeCertificate({ commonName: "x509-device" });
    const garbage = randomBytes(2048);
    const privateKey = writeSecret(tempDir(), "garbage.pem", garbage);

    const result = await checkPair(files.certificate, privateKey, [files.privateKeyPem]);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/x509/privateKey: ${privateKey}: holds no PEM private key`,
    );
  });

  test("with an expired certificate is served, with a warning", async () => {
    const files = makeCertificate({ commonName: "x509-device", expired: true });

    const result = await checkPair(files.certificate, files.privateKey, [files.privateKeyPem]);

    expect(result.code).toBe(0);
    expect(result.output).toContain(
      "warning: the identity certificate expired on 2021-01-01T00:00:00.000Z",
    );
  });

  test("whose CN differs from the device id is served, with a warning", async () => {
    const files = makeCertificate({ commonName: "someone-else" });

    const result = await checkPair(files.certificate, files.privateKey, [files.privateKeyPem]);

    expect(result.code).toBe(0);
    expect(result.output).toContain(
      "warning: the identity certificate's subject CN differs from the device id",
    );
  });

  test("with CRLF line endings and a chain certificate after it is accepted", async () => {
    const identity = makeCertificate({ commonName: "x509-device" });
    const issuer = makeCertificate({ commonName: "issuer" });
    const folder = tempDir();
    const chain = (identity.certificatePem + issuer.certificatePem).replace(/\n/g, "\r\n");
    const certificate = join(folder, "chain.pem");
    writeFileSync(certificate, chain);

    const result = await checkPair(certificate, identity.privateKey, [identity.privateKeyPem]);

    expect(result.code).toBe(0);
  });

  test("with an encrypted key is refused with how to decrypt it", async () => {
    const files = makeCertificate({ commonName: "x509-device" });
    const folder = tempDir();
    const encrypted = join(folder, "encrypted.pem");
    openssl([
      "pkey",
      "-in",
      files.privateKey,
      "-aes256",
      "-passout",
      "pass:secret-pass",
      "-out",
      encrypted,
    ]);

    const result = await checkPair(files.certificate, encrypted, [files.privateKeyPem]);

    expect(result.code).toBe(3);
    expect(result.output).toContain("the private key is encrypted");
  });

  test("with the files swapped is refused", async () => {
    const files = makeCertificate({ commonName: "x509-device" });

    const result = await checkPair(files.privateKey, files.certificate, [files.privateKeyPem]);

    expect(result.code).toBe(3);
    expect(result.output).toContain("holds no PEM certificate");
    expect(readFileSync(files.privateKey, "utf8")).toBe(files.privateKeyPem);
  });

  const ecKey = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const keyLabels = [
    ["PRIVATE KEY", {}],
    ["RSA PRIVATE KEY", { pkcs1: true }],
    ["EC PRIVATE KEY", { algorithm: ecKey, pkcs1: true }],
    ["ENCRYPTED PRIVATE KEY", { encrypt: true }],
  ] as const;

  /** The identity's key in the form a label names: PKCS#8, PKCS#1, SEC1 or encrypted. */
  function keyWithLabel(options: {
    algorithm?: readonly string[];
    pkcs1?: boolean;
    encrypt?: boolean;
  }) {
    const files = makeCertificate({ commonName: "x509-device", ...options });
    if (!options.encrypt) return { files, keyPem: files.privateKeyPem };

    const args = ["pkey", "-in", files.privateKey, "-aes256", "-passout", "pass:secret-pass"];
    return { files, keyPem: openssl(args) };
  }

  for (const [label, options] of keyLabels) {
    for (const order of ["key first", "certificate first"] as const) {
      test(`whose certificate file also holds a ${label} (${order}) is refused without showing the key`, async () => {
        const { files, keyPem } = keyWithLabel(options);
        expect(keyPem).toContain(`-----BEGIN ${label}-----`);
        const parts = [keyPem, files.certificatePem];
        const content = (order === "key first" ? parts : parts.reverse()).join("");
        const combined = writeSecret(tempDir(), "combined.pem", content, 0o644);

        const result = await checkPair(combined, files.privateKey, [files.privateKeyPem, keyPem]);

        expect(result.code).toBe(3);
        expect(result.output).toContain(
          `/credentials/x509/certificate: ${combined}: holds a private key as well as the certificate; it is not served; the private key belongs in the privateKey file only`,
        );
        expect(result.output).toContain(
          "; its mode 0644 has let every user on the device read that key: treat it as exposed and rotate it",
        );
        expect(result.output).not.toContain("PRIVATE KEY-----");
      });
    }
  }

  test("whose certificate file holds the key but only its owner may read it is not called exposed", async () => {
    const files = makeCertificate({ commonName: "x509-device" });
    const combined = writeSecret(
      tempDir(),
      "combined.pem",
      files.privateKeyPem + files.certificatePem,
      0o600,
    );

    const result = await checkPair(combined, files.privateKey, [files.privateKeyPem]);

    expect(result.code).toBe(3);
    expect(result.output).toContain("holds a private key as well as the certificate");
    expect(result.output).not.toContain("exposed");
    expect(result.output).not.toContain("PRIVATE KEY-----");
  });

  test("whose certificate file holds the key is not served either: serve refuses to start", async () => {
    const files = makeCertificate({ commonName: "x509-device" });
    const folder = tempDir();
    const socket = join(folder, "external.sock");
    const combined = writeSecret(
      folder,
      "combined.pem",
      files.privateKeyPem + files.certificatePem,
    );
    const config = writeConfig(folder, {
      device: { hubName: device.hubName },
      credentials: { x509: { source: "payload", certificate: combined, privateKey: combined } },
      listen: { endpoint: `unix://${socket}`, socket: { mode: "0600" } },
    });

    const result = await runExtprov({
      args: ["serve", "--config", config],
      secrets: [files.privateKeyPem],
    });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `refused to start: ${config}: /credentials/x509/certificate: ${combined}: holds a private key`,
    );
    expect(existsSync(socket)).toBe(false);
  });

  test("whose private key file holds two keys is refused", async () => {
    const files = makeCertificate({ commonName: "x509-device" });
    const other = makeCertificate({ commonName: "x509-device" });
    const folder = tempDir();
    const keys = writeSecret(folder, "keys.pem", files.privateKeyPem + other.privateKeyPem);

    const result = await checkPair(files.certificate, keys, [
      files.privateKeyPem,
      other.privateKeyPem,
    ]);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/x509/privateKey: ${keys}: holds 2 private keys, and iotedged takes one`,
    );
  });

  /** Checks a configuration that gives no device id, with a certificate of this CN. */
  async function checkWithoutDeviceId(commonName: string) {
    const files = makeCertificate({ commonName });
    const folder = tempDir();
    const file = writeConfig(folder, {
      device: { hubName: device.hubName },
      credentials: {
        x509: { source: "payload", certificate: files.certificate, privateKey: files.privateKey },
      },
    });

    const result = await runExtprov({
      args: ["check", "--config", file],
      secrets: [files.privateKeyPem],
    });
    return { ...result, files };
  }

  test("takes the device id from the certificate's CN when none is configured", async () => {
    const result = await checkWithoutDeviceId("cn-device");

    expect(result.code).toBe(0);
    expect(result.output).toContain('"deviceId": "cn-device"');
  });

  test("whose CN is not a device id, with none configured, is refused at the certificate", async () => {
    const { files, ...result } = await checkWithoutDeviceId("cn device");

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `/credentials/x509/certificate: ${files.certificate}: the certificate's subject CN, taken as the device id, is not a valid IoT Hub device id; set device.deviceId to the device's id`,
    );
  });
});
