/** Writes configuration files for tests, as YAML (or JSON), with a chosen mode. */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ConfigDocument {
  [field: string]: unknown;
}

/**
 * Writes `document` to `folder/name` (YAML unless the name ends in .json), mode 0600. A
 * document without `listen` gets a socket in `folder`: extprov's default,
 * /var/run/external, is the host's, and `check` would look at it.
 */
export function writeConfig(
  folder: string,
  document: ConfigDocument,
  name = "config.yaml",
  mode = 0o600,
): string {
  const path = join(folder, name);
  const written = "listen" in document ? document : { ...document, listen: localListen(folder) };
  const text = name.endsWith(".json")
    ? JSON.stringify(written, null, 2)
    : Bun.YAML.stringify(written, null, 2);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

/** A unix endpoint in `folder`, as the configuration spells it. */
export function socketEndpoint(socket: string): string {
  return `unix://${socket}`;
}

/** A complete symmetric-key configuration serving on `socket`. */
export function symmetricKeyConfig(
  socket: string,
  key: string,
  extra: ConfigDocument = {},
): ConfigDocument {
  return {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "test-device" },
    credentials: { symmetricKey: { key } },
    listen: { endpoint: socketEndpoint(socket), socket: { mode: "0600" } },
    ...extra,
  };
}

function localListen(folder: string) {
  return { endpoint: socketEndpoint(join(folder, "external.sock")), socket: { mode: "0600" } };
}
