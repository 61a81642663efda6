/**
 * GET /device/provisioninginformation?api-version=2019-04-10: the device's hub, id and
 * credentials, as iotedged reads them at every start.
 */
import { Elysia } from "elysia";
import { ApiVersionQuery } from "../schemas.ts";
import { log } from "../../log.ts";
import type { ProvisioningService } from "../../provisioning/service.ts";
import type { ProvisioningState } from "../../provisioning/state.ts";

/**
 * One Headers object for every answer (each Response copies it): building one from a plain
 * object on every request cost more than the rest of the answer.
 */
const jsonHeaders = new Headers({ "content-type": "application/json" });

export function provisioningInformationRoute(service: ProvisioningService) {
  return new Elysia().get(
    "/device/provisioninginformation",
    () => {
      const state = service.current();
      if (!(state instanceof Promise)) return answer(state);

      // After a reprovision notice iotedged restarts and asks again: it gets the new identity.
      log.debug("request waits for the running reprovision");
      return state.then(answer);
    },
    // No `response` schema: each answer is checked against DeviceProvisioningInfo once,
    // when its state is loaded (provisioning/state.ts), and handed out as ready bytes; a
    // schema here would only have Elysia compile a second validator on the first request.
    { query: ApiVersionQuery },
  );
}

/** The body was serialized and checked against DeviceProvisioningInfo when loaded. */
function answer(state: ProvisioningState): Response {
  return new Response(state.body, { headers: jsonHeaders });
}
