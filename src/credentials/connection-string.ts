/**
 * Device connection strings, as the IoT hub shows them:
 * `HostName=<hub>;DeviceId=<device>;SharedAccessKey=<base64>`, with `;GatewayHostName=<host>`
 * for a device behind a gateway. Any other part means another kind of string, or a typo.
 */
import { checkDeviceField, type DeviceField } from "../config/device.ts";
import { checkSymmetricKey, type KeyProblem } from "./symmetric-key.ts";

export interface DeviceConnection {
  hubName: string;
  deviceId: string;
  key: string;
  /**
   * Downstream devices' strings carry GatewayHostName. It is accepted but not served: the
   * External Provisioning API's DeviceProvisioningInfo has no field for it.
   */
  hasGatewayHostName: boolean;
}

const requiredNames = ["HostName", "DeviceId", "SharedAccessKey"];
const allowedNames = [...requiredNames, "GatewayHostName"];
const fromTheHub = "copy the device's own connection string from its page in the IoT hub";

type Part = { name: string; value: string };

/** Splits and checks a device connection string; never repeats its values in a problem. */
export function parseConnectionString(text: string): DeviceConnection | KeyProblem {
  const quoted = refuseQuotes(text);
  if (quoted) return quoted;

  const parts = splitParts(text);
  if (!Array.isArray(parts)) return parts;

  const refused = refuseOtherKinds(parts) ?? refuseUnknown(parts) ?? refuseDuplicates(parts);
  if (refused) return refused;

  const values = new Map(parts.map(({ name, value }) => [name, value]));
  const missing = requiredNames.filter((name) => !values.get(name));
  if (missing.length > 0) {
    return {
      problem: `the connection string has no ${missing.join(", ")}`,
      hint: "use the device's connection string: HostName=...;DeviceId=...;SharedAccessKey=...",
    };
  }

  const identity = refuseBadIdentity(values);
  if (identity) return identity;

  const checked = checkSymmetricKey(values.get("SharedAccessKey")!);
  if ("problem" in checked)
    return { problem: `SharedAccessKey: ${checked.problem}`, hint: checked.hint };

  return {
    hubName: values.get("HostName")!,
    deviceId: values.get("DeviceId")!,
    key: checked.key,
    hasGatewayHostName: values.has("GatewayHostName"),
  };
}

/** The parts that name the hub and the device, and the device-section field each fills. */
const identityParts: [string, DeviceField][] = [
  ["HostName", "hubName"],
  ["DeviceId", "deviceId"],
];

/**
 * Checks hub and device with the device section's rules, and blames the string: that is
 * where a user who gave no device section wrote them.
 */
function refuseBadIdentity(values: Map<string, string>): KeyProblem | undefined {
  for (const [name, field] of identityParts) {
    const problem = checkDeviceField(field, values.get(name)!);
    if (problem) {
      return { problem: `the connection string's ${name} ${problem.problem}`, hint: problem.hint };
    }
  }

  return undefined;
}

/**
 * No part's name starts with a quote and no value ends with one, so a quote at either end
 * was copied with the string (from a shell line or a JSON file): name it, not the value.
 */
function refuseQuotes(text: string): KeyProblem | undefined {
  const trimmed = text.trim();
  const first = quotes.test(trimmed[0] ?? "");
  const last = quotes.test(trimmed.at(-1) ?? "");
  if (!first && !last) return undefined;

  const hint = "remove the quotes: it is HostName=...;DeviceId=...;SharedAccessKey=... as is";
  const quotedPart = last && !first ? lastPartQuoted(trimmed) : undefined;
  if (quotedPart) return { problem: `the connection string's ${quotedPart} is in quotes`, hint };

  const where =
    first && last ? "is wrapped in quotes" : `${first ? "starts" : "ends"} with a quote`;
  return { problem: `the connection string ${where}`, hint };
}

/** Typographic quotes too: a string pasted from a document or a chat comes with them. */
const quotes = /^["'`\u2018\u2019\u201c\u201d\u00ab\u00bb]$/;

/** The name of the last part when its value opens with a quote (`SharedAccessKey="..."`). */
function lastPartQuoted(text: string): string | undefined {
  const last = text.slice(text.lastIndexOf(";") + 1);
  const equals = last.indexOf("=");
  const name = last.slice(0, equals);

  // Only a name a device's string has is repeated: anything else may be part of a value.
  if (equals <= 0 || !allowedNames.includes(name)) return undefined;
  return quotes.test(last[equals + 1] ?? "") ? name : undefined;
}

function splitParts(text: string): Part[] | KeyProblem {
  const parts: Part[] = [];

  for (const part of text.trim().split(";")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    if (equals <= 0) {
      return {
        problem: "a part of the connection string is not Name=value",
        hint: "copy it again from the IoT hub",
      };
    }
    // The key's own = padding stays with the value: split at the first = only.
    parts.push({ name: part.slice(0, equals).trim(), value: part.slice(equals + 1).trim() });
  }

  return parts;
}

/** A hub's, a module's or an X.509 device's string is not one extprov can serve. */
function refuseOtherKinds(parts: Part[]): KeyProblem | undefined {
  const has = (name: string) => parts.some((part) => part.name === name);

  if (has("SharedAccessKeyName")) {
    return {
      problem:
        "this is a hub's connection string (it has SharedAccessKeyName, a shared access policy), not a device's",
      hint: fromTheHub,
    };
  }

  if (has("ModuleId")) {
    return {
      problem: "this is a module's connection string (it has ModuleId), not a device's",
      hint: fromTheHub,
    };
  }

  const x509 = parts.find((part) => part.name.toLowerCase() === "x509");
  if (x509?.value.toLowerCase() === "true") {
    return {
      problem: "this is an X.509 device's connection string (x509=true): it carries no key",
      hint: "configure credentials.x509 with the device's certificate and private key instead",
    };
  }

  return undefined;
}

function refuseUnknown(parts: Part[]): KeyProblem | undefined {
  const unknown = parts.find((part) => !allowedNames.includes(part.name));
  if (!unknown) return undefined;

  const problem = `the connection string has ${describePart(unknown)}, which a device's does not`;
  const meant = allowedNames.find((name) => name.toLowerCase() === unknown.name.toLowerCase());
  if (meant) return { problem, hint: `part names are case-sensitive: write ${meant}` };

  return {
    problem,
    hint: `remove it; a device connection string has only ${allowedNames.join(", ")}`,
  };
}

function refuseDuplicates(parts: Part[]): KeyProblem | undefined {
  const names = parts.map((part) => part.name);
  const twice = names.find((name, index) => names.indexOf(name) !== index);
  if (twice === undefined) return undefined;

  return {
    problem: `the connection string has ${twice} more than once`,
    hint: "keep one; copy the string again from the IoT hub",
  };
}

/**
 * Names a part by its name alone. A name is shown only when it looks like one: a key
 * pasted as a part of its own splits at its = padding into a "name" that is the key.
 */
function describePart({ name, value }: Part): string {
  const looksLikeName = /^[A-Za-z][A-Za-z0-9]{0,31}$/.test(name) && !/^=*$/.test(value);
  return looksLikeName
    ? `a part named ${name}`
    : "a part whose name looks like a value (not shown)";
}
