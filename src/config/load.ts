/**
 * Reads the configuration file (YAML or JSON), validates it against the schema and turns
 * it into a resolved `Config`: paths made absolute, the endpoint parsed, defaults applied.
 * Credentials are only described here; `src/credentials/` reads and checks them.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { Value, ValueErrorType, type ValueError } from "@sinclair/typebox/value";
import { ConfigError, ConfigErrors } from "../errors.ts";
import { checkDeviceSection } from "./device.ts";
import { duplicateKeys, type DuplicateKey } from "./duplicate-keys.ts";
import { httpAddressOf, isLoopback, socketPathLengthProblem } from "./endpoint.ts";
import { ConfigFile, type Principal, type ProvisioningStatus } from "./schema.ts";
import type { ProvisioningSubstatus } from "./schema.ts";
import { describeSchemaError } from "./schema-errors.ts";
import { checkSymmetricKey } from "../credentials/symmetric-key.ts";
import { socketProblems } from "../socket/ownership.ts";
import { trustProblem, writableByOthers } from "../system/path-trust.ts";
import { runAsProblems } from "../system/privileges.ts";

export const defaultEndpoint = "unix:///var/run/external/external.sock";
export const defaultSocketMode = 0o660;
/** A configuration is a few hundred bytes; anything past this is the wrong file. */
export const maxConfigBytes = 1024 * 1024;
export const defaultHookTimeoutSeconds = 60;

export type CredentialSpec =
  | { kind: "symmetric-key"; key: SecretSource }
  | { kind: "symmetric-key-hsm" }
  | { kind: "connection-string"; value: SecretSource }
  | { kind: "x509"; source: "payload" | "hsm"; certificate: string; privateKey: string };

/** A secret given inline in the configuration file, or the absolute path of a file. */
export type SecretSource = { inline: string; field: string } | { file: string; field: string };

export type ListenConfig =
  | {
      kind: "unix";
      path: string;
      owner?: Principal;
      group?: Principal;
      mode: number;
    }
  | { kind: "tcp"; hostname: string; port: number; allowNonLoopback: boolean };

export interface ReprovisionConfig {
  /** The program (absolute path) and its arguments, run without a shell. */
  hook?: string[];
  timeoutSeconds: number;
  /** Explicit status and substatus to serve once a reload has changed the identity. */
  afterIdentityChange: { status?: ProvisioningStatus; substatus?: ProvisioningSubstatus };
}

export interface Config {
  /** Absolute path of the file this came from, for messages. */
  file: string;
  /** True for the demo built into the executable: there is no file to check. */
  embedded?: boolean;
  device: {
    hubName?: string;
    deviceId?: string;
    status?: ProvisioningStatus;
    substatus?: ProvisioningSubstatus;
  };
  credentials: CredentialSpec;
  listen: ListenConfig;
  runAs?: { user: Principal; group?: Principal };
  security: { allowInsecureSecretFiles: boolean; allowWorldAccessibleSocket: boolean };
  reprovision: ReprovisionConfig;
}

/** Reads, parses and validates a configuration file; throws `ConfigErrors` listing every problem. */
export function loadConfig(path: string): Config {
  const file = resolve(path);
  const document = parseDocument(file, readConfigText(file));
  const config = resolveConfig(file, document, dirname(file));

  // Whatever its security section says: a file that others may change cannot vouch for itself.
  checkConfigFileTrust(file);
  return config;
}

/**
 * The uid extprov was started as. A reload runs after the drop to the service user, who
 * must not be trusted with the configuration any more than at start.
 */
const startedAsUid = process.geteuid?.() ?? 0;

/**
 * The configuration says which program the reprovision hook runs and who may connect to
 * the socket: whoever can change it, or put another in its place through a folder or link
 * on its way, controls extprov. Only root and the user extprov was started as may own or
 * write any of them.
 */
function checkConfigFileTrust(file: string): void {
  const trusted = [0, startedAsUid];
  const fail = (problem: string, hint: string) =>
    new ConfigErrors([new ConfigError(file, "", problem, hint)]);
  const stats = statSync(file);
  const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

  if (writableByOthers(stats, trusted)) {
    const who = (stats.mode & 0o002) !== 0 ? "every user" : "its group";
    throw fail(
      `mode ${octal(stats.mode)} lets ${who} change it, and with it the hook extprov runs and who may connect`,
      "chmod go-w it (0600, or 0644 when it holds no secret)",
    );
  }
  if (!trusted.includes(stats.uid)) {
    throw fail(
      `is owned by uid ${stats.uid}, who could change the hook extprov runs and who may connect`,
      "chown it to root (or to the user that starts extprov, if not root)",
    );
  }

  const onItsWay = trustProblem({
    path: file,
    trustedOwners: trusted,
    risk: "put another configuration in its place",
    move: "keep the configuration in /etc/extprov",
    owners: "root (or the user that starts extprov, if not root)",
  });
  if (onItsWay) throw fail(...onItsWay);
}

/**
 * Validates an already parsed document (also the demo embedded in the executable).
 * Relative paths in it are taken from `base`.
 */
export function resolveConfig(file: string, document: unknown, base: string): Config {
  // Check is several times quicker than Errors on its first run, which is every start's.
  const valid = Value.Check(ConfigFile, document);
  const schemaErrors = valid ? [] : [...Value.Errors(ConfigFile, document)];
  const problems = firstPerField(schemaErrors, file);
  // A document that is not a mapping has nothing more to check.
  if (schemaErrors.some(({ path }) => path === "")) throw new ConfigErrors(problems);

  const checked = document as ConfigFile;
  const { credentials, listen } = resolveSections(file, base, checked, schemaErrors, problems);
  if (problems.length > 0 || !credentials || !listen) throw new ConfigErrors(problems);

  return {
    file,
    device: { ...checked.device },
    credentials,
    listen,
    runAs: checked.runAs,
    security: securityOf(checked),
    reprovision: resolveReprovision(base, checked),
  };
}

function securityOf(document: ConfigFile): Config["security"] {
  return {
    allowInsecureSecretFiles: document.security?.allowInsecureSecretFiles === true,
    allowWorldAccessibleSocket: document.security?.allowWorldAccessibleSocket === true,
  };
}

/**
 * The checks beyond the schema, on each section the schema accepted, so that one run
 * reports every problem; a section it refused would only add follow-on errors. Users and
 * groups are looked up in the account files here too; files the configuration names
 * (credentials, the hook) are read later, by `loadState`.
 */
function resolveSections(
  file: string,
  base: string,
  document: ConfigFile,
  schemaErrors: ValueError[],
  problems: ConfigError[],
): { credentials?: CredentialSpec; listen?: ListenConfig } {
  const faultAt = (path: string) => schemaErrors.some((error) => error.path === path);
  const faultIn = (section: string) =>
    schemaErrors.some(({ path }) => path === section || path.startsWith(`${section}/`));
  const credentialsSection = faultIn("/credentials") ? undefined : document.credentials;

  // Its fields are checked one by one: a wrong type in one leaves the other to check.
  if (!faultAt("/device")) checkDeviceSection(file, document.device, credentialsSection, problems);

  const keysInPaths = keyInPathProblems(file, document, faultIn);
  problems.push(...keysInPaths);
  const credentials =
    keysInPaths.length > 0
      ? undefined
      : credentialsSection && resolveCredentials(file, base, document, problems);
  const listen = faultIn("/listen") ? undefined : resolveListen(file, base, document, problems);
  if (listen?.kind === "unix") problems.push(...socketProblems(file, listen, securityOf(document)));
  if (document.runAs && !faultIn("/runAs")) problems.push(...runAsProblems(file, document.runAs));

  return { credentials, listen };
}

/** The fields that name a file, by the schema's paths. */
const pathFields: [string, (document: ConfigFile) => unknown][] = [
  ["/credentials/symmetricKey/file", (d) => d.credentials?.symmetricKey?.file],
  ["/credentials/connectionString/file", (d) => d.credentials?.connectionString?.file],
  ["/credentials/x509/certificate", (d) => d.credentials?.x509?.certificate],
  ["/credentials/x509/privateKey", (d) => d.credentials?.x509?.privateKey],
  ["/reprovision/hook/0", (d) => d.reprovision?.hook?.[0]],
];

/**
 * A key pasted into a field that takes a path (`file:` for `key:`) is refused here, where
 * the mistake is plain; messages about a path that merely may hold a secret leave it out
 * (shown-path.ts).
 */
function keyInPathProblems(
  file: string,
  document: ConfigFile,
  faultIn: (section: string) => boolean,
): ConfigError[] {
  return pathFields
    .filter(([field, read]) => !faultIn(field) && looksLikePortalKey(read(document)))
    .map(
      ([field]) =>
        new ConfigError(
          file,
          field,
          "looks like a key (not shown), not a path",
          "write the key itself in `key:` (or the connection string in `value:`), or here the path of the file that holds it (a file named so: ./ before its name)",
        ),
    );
}

/**
 * An IoT Hub key as the portal shows it: base64 of 16, 32 or 64 random bytes, so 24 or
 * more characters, a multiple of 4, ending in "=" padding, which a file name seldom has.
 */
function looksLikePortalKey(value: unknown): boolean {
  if (typeof value !== "string" || value.length < 24 || value.length % 4 !== 0) return false;
  return /^[A-Za-z0-9+/]+={1,2}$/.test(value) && /[a-z]/.test(value) && /[A-Z0-9]/.test(value);
}

function resolveReprovision(base: string, document: ConfigFile): ReprovisionConfig {
  const section = document.reprovision ?? {};
  const [program, ...args] = section.hook ?? [];

  return {
    // A relative program is taken from the configuration's folder, never searched in PATH.
    hook: program === undefined ? undefined : [resolve(base, program), ...args],
    timeoutSeconds: section.timeoutSeconds ?? defaultHookTimeoutSeconds,
    afterIdentityChange: { ...section.afterIdentityChange },
  };
}

function readConfigText(file: string): string {
  const fail = (problem: string, hint?: string) =>
    new ConfigErrors([new ConfigError(file, "", problem, hint)]);

  let stats;
  try {
    stats = statSync(file);
  } catch (error) {
    throw fail(...describeReadError(error));
  }

  // Looked at before it is opened: opening a FIFO waits for a writer, /dev/zero never ends.
  if (!stats.isFile())
    throw fail("is not a regular file", "name the configuration file itself (--config)");
  if (stats.size > maxConfigBytes) {
    throw fail(
      `is ${stats.size} bytes, too large for a configuration (limit ${maxConfigBytes})`,
      "check that this is the configuration file (--config); one is a few hundred bytes",
    );
  }

  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw fail(...describeReadError(error));
  }
}

function describeReadError(error: unknown): [string, string?] {
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === "ENOENT"
      ? "create it from examples/config.yaml, or pass another with --config"
      : code === "EACCES"
        ? "run extprov as a user that can read it (root or the service user)"
        : undefined;
  return [`cannot read the file (${code})`, hint];
}

function parseDocument(file: string, text: string): unknown {
  const json = extname(file) === ".json";

  let document: unknown;
  try {
    document = json ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (error) {
    const line = json ? undefined : findFirstBadLine(text);
    const where = line ? ` near line ${line}` : "";
    throw new ConfigErrors([
      new ConfigError(
        file,
        "",
        `not valid ${json ? "JSON" : "YAML"}${where}: ${parseProblem(error as Error)}`,
        json
          ? "JSON needs double quotes around every name and text value, and commas between items but not after the last"
          : "check indentation, colons and quotes",
      ),
    ]);
  }

  const duplicates = duplicateKeys(text, json);
  if (duplicates.length > 0) {
    throw new ConfigErrors(duplicates.map((duplicate) => duplicateKeyError(file, duplicate)));
  }

  if (document === null || document === undefined) {
    throw new ConfigErrors([
      new ConfigError(
        file,
        "",
        "holds no settings (it is empty or only comments)",
        "start from examples/config.yaml",
      ),
    ]);
  }

  return document;
}

/**
 * The parser's message without the text it quotes: the JSON parser names the word it
 * stumbled on (`Unexpected identifier "..."`), which is a key written without quotes.
 */
function parseProblem(error: Error): string {
  return error.message
    .replace(/^\w+ Parse error: /, "")
    .replace(/\s*"[^"]*"/g, " (the text is not shown)");
}

function duplicateKeyError(file: string, { parent, key, firstLine, line }: DuplicateKey) {
  // A name is repeated only when it looks like one: a pasted key may have become a name.
  const field = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(key)
    ? `${parent}/${key}`
    : `${parent}/<a field whose name looks like a value, not shown>`;

  return new ConfigError(
    file,
    field,
    `is given twice, on lines ${firstLine} and ${line}, and the second would silently replace the first`,
    "keep one, with everything it should hold",
  );
}

/**
 * Bun's YAML errors do not say where the problem is; parsing growing prefixes of the file
 * finds the first line after which no continuation can make it valid again.
 */
function findFirstBadLine(text: string): number | undefined {
  const lines = text.split("\n");
  let lastGood = 0;

  for (let count = 1; count <= lines.length; count++) {
    try {
      Bun.YAML.parse(lines.slice(0, count).join("\n"));
      lastGood = count;
    } catch {
      // An unfinished block may become valid with the next line; keep looking.
    }
  }

  return lastGood < lines.length ? lastGood + 1 : undefined;
}

/** TypeBox reports a union failure once per branch; one message per field is enough. */
function firstPerField(errors: ValueError[], file: string): ConfigError[] {
  const seen = new Set<string>();
  const result: ConfigError[] = [];

  for (const error of errors) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    const { problem, hint } = describeSchemaError(error);
    result.push(new ConfigError(file, safePath(error), problem, hint));
  }

  return result;
}

/**
 * The field path to name in a message. An unknown field's name is repeated only when it
 * looks like a field name: a key pasted without its `key:` becomes a field name, and must
 * not reach the log.
 */
function safePath(error: ValueError): string {
  const path = error.path || "/";
  if (error.type !== ValueErrorType.ObjectAdditionalProperties) return path;

  const cut = path.lastIndexOf("/");
  const name = path.slice(cut + 1);
  if (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name)) return path;
  return `${path.slice(0, cut) || ""}/<a field whose name looks like a value, not shown>`;
}

function resolveCredentials(
  file: string,
  base: string,
  document: ConfigFile,
  problems: ConfigError[],
): CredentialSpec | undefined {
  const { symmetricKey, connectionString, x509 } = document.credentials;
  const given = [
    symmetricKey && "symmetricKey",
    connectionString && "connectionString",
    x509 && "x509",
  ].filter(Boolean);

  if (given.length !== 1) {
    const problem =
      given.length === 0
        ? "no credential is configured"
        : `several credentials are configured (${given.join(", ")})`;
    problems.push(
      new ConfigError(
        file,
        "/credentials",
        problem,
        "keep exactly one of symmetricKey, connectionString, x509",
      ),
    );
    return undefined;
  }

  if (symmetricKey?.source === "hsm") return resolveHsmKey(file, symmetricKey, problems);

  if (symmetricKey) {
    const key = secretSource(
      file,
      base,
      "/credentials/symmetricKey",
      symmetricKey.key,
      symmetricKey.file,
      "key",
      problems,
    );
    if (key && "inline" in key) checkInlineKey(file, key, problems);
    return key && { kind: "symmetric-key", key };
  }

  if (connectionString) {
    const field = "/credentials/connectionString";
    const value = secretSource(
      file,
      base,
      field,
      connectionString.value,
      connectionString.file,
      "value",
      problems,
    );
    return value && { kind: "connection-string", value };
  }

  return resolveX509(file, base, x509!, problems);
}

/** A key written in the configuration is checked with it; a key file is read later. */
function checkInlineKey(
  file: string,
  key: { inline: string; field: string },
  problems: ConfigError[],
): void {
  const checked = checkSymmetricKey(key.inline);
  if ("problem" in checked) {
    problems.push(new ConfigError(file, key.field, checked.problem, checked.hint));
  }
}

/** iotedged 1.1 takes `symmetric-key` with `hsm` as "the key is in my HSM": none is sent. */
function resolveHsmKey(
  file: string,
  section: NonNullable<ConfigFile["credentials"]["symmetricKey"]>,
  problems: ConfigError[],
): CredentialSpec | undefined {
  if (section.key === undefined && section.file === undefined) return { kind: "symmetric-key-hsm" };

  problems.push(
    new ConfigError(
      file,
      "/credentials/symmetricKey",
      "source hsm takes no `key` or `file`",
      "remove them: iotedged uses the key already in its HSM",
    ),
  );
  return undefined;
}

function secretSource(
  file: string,
  base: string,
  field: string,
  inline: string | undefined,
  path: string | undefined,
  inlineName: string,
  problems: ConfigError[],
): SecretSource | undefined {
  if ((inline === undefined) === (path === undefined)) {
    problems.push(
      new ConfigError(
        file,
        field,
        `give exactly one of \`${inlineName}\` and \`file\``,
        "prefer `file`, kept readable only by the service user",
      ),
    );
    return undefined;
  }

  if (inline !== undefined) return { inline, field: `${field}/${inlineName}` };
  return { file: resolve(base, path!), field: `${field}/file` };
}

function resolveX509(
  file: string,
  base: string,
  x509: NonNullable<ConfigFile["credentials"]["x509"]>,
  problems: ConfigError[],
): CredentialSpec | undefined {
  if (x509.source === "payload") {
    return {
      kind: "x509",
      source: "payload",
      certificate: resolve(base, x509.certificate),
      privateKey: resolve(base, x509.privateKey),
    };
  }

  // With `hsm`, the paths are iotedged's to open, on its side: they are passed as given.
  for (const name of ["certificate", "privateKey"] as const) {
    if (!isAbsolute(x509[name])) {
      problems.push(
        new ConfigError(
          file,
          `/credentials/x509/${name}`,
          "must be an absolute path for source hsm",
          "iotedged opens it from its own working folder, so give the full path",
        ),
      );
    }
  }

  return {
    kind: "x509",
    source: "hsm",
    certificate: x509.certificate,
    privateKey: x509.privateKey,
  };
}

function resolveListen(
  file: string,
  base: string,
  document: ConfigFile,
  problems: ConfigError[],
): ListenConfig | undefined {
  const listen = document.listen ?? {};
  const endpoint = listen.endpoint ?? defaultEndpoint;
  const field = "/listen/endpoint";

  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    problems.push(
      new ConfigError(
        file,
        field,
        "is not a URL",
        "write unix:///var/run/external/external.sock or http://127.0.0.1:9999",
      ),
    );
    return undefined;
  }

  if (url.protocol === "unix:") return resolveUnixListen(file, base, url, listen, problems);
  if (url.protocol === "http:") return resolveTcpListen(file, url, endpoint, listen, problems);

  const hint =
    url.protocol === "https:"
      ? "iotedged supports only http and unix for this endpoint"
      : "use unix:// or http://";
  problems.push(new ConfigError(file, field, `unsupported scheme ${url.protocol}`, hint));
  return undefined;
}

function resolveUnixListen(
  file: string,
  base: string,
  url: URL,
  listen: NonNullable<ConfigFile["listen"]>,
  problems: ConfigError[],
): ListenConfig | undefined {
  // unix:///abs/path is what iotedged takes; unix:relative/path is resolved from `base`.
  const path = resolve(base, decodeURIComponent(url.pathname));
  if (url.host !== "" || url.pathname === "" || url.pathname.endsWith("/")) {
    problems.push(
      new ConfigError(
        file,
        "/listen/endpoint",
        "a unix endpoint needs a socket path",
        "write three slashes: unix:///var/run/external/external.sock",
      ),
    );
    return undefined;
  }

  const tooLong = socketPathLengthProblem(path);
  if (tooLong) {
    problems.push(new ConfigError(file, "/listen/endpoint", tooLong.problem, tooLong.hint));
    return undefined;
  }

  const socket = listen.socket ?? {};
  const mode = socket.mode === undefined ? defaultSocketMode : Number.parseInt(socket.mode, 8);
  checkSocketMode(file, mode, problems);

  return { kind: "unix", path, owner: socket.owner, group: socket.group, mode };
}

function checkSocketMode(file: string, mode: number, problems: ConfigError[]): void {
  const field = "/listen/socket/mode";

  if ((mode & 0o111) !== 0) {
    problems.push(
      new ConfigError(
        file,
        field,
        "execute bits mean nothing on a socket",
        'use read and write bits only, e.g. "0660"',
      ),
    );
  }

  if ((mode & 0o222) === 0) {
    problems.push(
      new ConfigError(
        file,
        field,
        "no one but root could connect: connecting needs write permission",
        'give the owner or group write, e.g. "0660"',
      ),
    );
  }
}

function resolveTcpListen(
  file: string,
  url: URL,
  endpoint: string,
  listen: NonNullable<ConfigFile["listen"]>,
  problems: ConfigError[],
): ListenConfig | undefined {
  const field = "/listen/endpoint";

  if (url.pathname !== "/" || url.search || url.username) {
    problems.push(
      new ConfigError(
        file,
        field,
        "an http endpoint is only a host and port",
        "write http://127.0.0.1:9999",
      ),
    );
  }

  if (listen.socket) {
    problems.push(
      new ConfigError(
        file,
        "/listen/socket",
        "only applies to unix endpoints",
        "remove it, or listen on a unix socket",
      ),
    );
  }

  const address = httpAddressOf(url, endpoint);
  if (!address) {
    problems.push(
      new ConfigError(
        file,
        field,
        "an http endpoint needs an explicit port",
        "write http://127.0.0.1:9999",
      ),
    );
    return undefined;
  }

  const allowNonLoopback = listen.allowNonLoopback ?? false;
  if (!allowNonLoopback && !isLoopback(address.hostname)) {
    problems.push(
      new ConfigError(
        file,
        field,
        `${address.hostname} is not a loopback address: other machines could ask for the device's credentials`,
        "listen on 127.0.0.1, or set listen.allowNonLoopback if the network is private to this device",
      ),
    );
  }

  return { kind: "tcp", ...address, allowNonLoopback };
}
