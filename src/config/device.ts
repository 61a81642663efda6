/**
 * The device section: the hub's host name and the device id, checked in the configuration
 * with its other problems. A value that only the credential holds (a connection string, a
 * certificate's CN) is checked with the same rules once the credential is read.
 */
import { ConfigError } from "../errors.ts";
import type { ConfigFile } from "./schema.ts";

export interface DeviceFieldProblem {
  problem: string;
  hint: string;
}

export type DeviceField = "hubName" | "deviceId";

const hostLabel = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
const hostName = new RegExp(`^(?=.{1,253}$)${hostLabel}(?:\\.${hostLabel})*$`);

/** iotedged connects to `hubName` as a host, so it is the hub's full host name. */
function checkHubName(name: string): DeviceFieldProblem | undefined {
  if (hostName.test(name)) return undefined;

  return {
    problem: "is not a host name",
    hint: "give the hub's host name, e.g. myhub.azure-devices.net",
  };
}

/** IoT Hub device ids: up to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ' */
function checkDeviceId(id: string): DeviceFieldProblem | undefined {
  if (/^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/.test(id)) return undefined;

  return {
    problem: "is not a valid IoT Hub device id",
    hint: "use up to 128 letters, digits and - . % _ * ? ! ( ) , : = @ $ '",
  };
}

const fieldLabel: Record<DeviceField, string> = {
  hubName: "hub's host name",
  deviceId: "device id",
};

/** What a person is told when neither the device section nor the credential gives `field`. */
export function missingDeviceField(field: DeviceField): DeviceFieldProblem {
  return { problem: "missing required field", hint: `add device.${field}` };
}

/** Checks the hub's host name or the device id, wherever it came from. */
export function checkDeviceField(
  field: DeviceField,
  value: string,
): DeviceFieldProblem | undefined {
  return field === "hubName" ? checkHubName(value) : checkDeviceId(value);
}

/**
 * Checks the configured hub and device, and that each is given where no credential
 * supplies it. `credentials` is undefined when its section is itself broken: what it
 * supplies is then unknown, and a missing field is reported once that section is fixed.
 */
export function checkDeviceSection(
  file: string,
  device: ConfigFile["device"],
  credentials: ConfigFile["credentials"] | undefined,
  problems: ConfigError[],
): void {
  const unknown = credentials === undefined;
  const fromString = credentials?.connectionString !== undefined;
  const fromCertificate = credentials?.x509?.source === "payload";
  const supplied = {
    hubName: unknown || fromString,
    deviceId: unknown || fromString || fromCertificate,
  };

  for (const field of ["hubName", "deviceId"] as const) {
    const value: unknown = device?.[field];
    // A value of the wrong type is the schema's to report.
    if (value !== undefined && typeof value !== "string") continue;

    const problem = fieldProblem(field, value, supplied[field]);
    if (problem) {
      problems.push(new ConfigError(file, `/device/${field}`, problem.problem, problem.hint));
    }
  }
}

function fieldProblem(
  field: DeviceField,
  value: string | undefined,
  supplied: boolean,
): DeviceFieldProblem | undefined {
  if (value === "") {
    const fix = supplied ? "remove it, or write" : "write";
    return { problem: "is empty", hint: `${fix} the ${fieldLabel[field]} between the quotes` };
  }
  if (value !== undefined) return checkDeviceField(field, value);
  return supplied ? undefined : missingDeviceField(field);
}
