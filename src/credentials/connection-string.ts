/**
 * Device connection strings, as the IoT hub shows them:
 * `HostName=<hub>;DeviceId=<device>;SharedAccessKey=<base64>`.
 */
import { checkSymmetricKey, type KeyProblem } from "./symmetric-key.ts";

export interface DeviceConnection {
  hubName: string;
  deviceId: string;
  key: string;
}

/** Splits and checks a device connection string; never repeats its values in a problem. */
export function parseConnectionString(text: string): DeviceConnection | KeyProblem {
  const parts = new Map<string, string>();

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
    parts.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }

  const unsupported = rejectUnsupported(parts);
  if (unsupported) return unsupported;

  const missing = ["HostName", "DeviceId", "SharedAccessKey"].filter((name) => !parts.get(name));
  if (missing.length > 0) {
    return {
      problem: `the connection string has no ${missing.join(", ")}`,
      hint: "use the device's connection string: HostName=...;DeviceId=...;SharedAccessKey=...",
    };
  }

  const checked = checkSymmetricKey(parts.get("SharedAccessKey")!);
  if ("problem" in checked)
    return { problem: `SharedAccessKey: ${checked.problem}`, hint: checked.hint };

  return { hubName: parts.get("HostName")!, deviceId: parts.get("DeviceId")!, key: checked.key };
}

function rejectUnsupported(parts: Map<string, string>): KeyProblem | undefined {
  if (parts.has("SharedAccessKeyName")) {
    return {
      problem: "this is a hub (service) connection string, not a device's",
      hint: "copy the connection string shown on the device's page in the IoT hub",
    };
  }

  if (parts.has("ModuleId")) {
    return {
      problem: "this is a module's connection string",
      hint: "use the device's connection string",
    };
  }

  if (parts.has("x509")) {
    return {
      problem: "X.509 connection strings carry no key",
      hint: "configure credentials.x509 instead",
    };
  }

  return undefined;
}
