/**
 * The status and substatus served after a reload (SIGHUP, `extprov reload`, or the one
 * after a reprovision hook) has changed the hub or the device while extprov runs.
 *
 * iotedged 1.1 maps the substatus to how it treats its cached state (provisioning.rs,
 * `ReprovisioningStatus::from`); deviceDataReset is what DPS reports when a device moved
 * to another hub with its data reset, so iotedged drops what it kept for the old identity.
 * Each field is taken, in order, from `reprovision.afterIdentityChange`, then from the
 * `device` section, then from these defaults.
 */
import type { DeviceProvisioningInfo } from "../http/schemas.ts";
import type { LoadedState } from "./load-state.ts";
import { prepareState, type ProvisioningState } from "./state.ts";

export const afterIdentityChangeDefaults = {
  status: "assigned",
  substatus: "deviceDataReset",
} as const;

/**
 * The state to serve after `previous`: `next` as loaded, unless the identity changed now
 * or a change is still in force for the same identity (a later reload, e.g. of a rotated
 * key, keeps it until the identity changes again or extprov restarts).
 */
export function applyIdentityRules(
  previous: ProvisioningState,
  next: LoadedState,
): ProvisioningState {
  const changed = !sameIdentity(previous.info, next.state.info);
  if (!changed && previous.identityChanged !== true) return next.state;

  const rules = next.config.reprovision.afterIdentityChange;
  const device = next.config.device;
  const info: DeviceProvisioningInfo = {
    ...next.state.info,
    status: rules.status ?? device.status ?? afterIdentityChangeDefaults.status,
    substatus: rules.substatus ?? device.substatus ?? afterIdentityChangeDefaults.substatus,
  };

  const state = prepareState({ info, warnings: next.state.warnings });
  return { ...state, identityChanged: true };
}

export function sameIdentity(a: DeviceProvisioningInfo, b: DeviceProvisioningInfo): boolean {
  return a.hubName === b.hubName && a.deviceId === b.deviceId;
}
