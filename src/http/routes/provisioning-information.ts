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
  // Elysia reads a handler's source to decide whether to await what it returns: a
  // `return f(...)` or `=> f(...)` would have it await every answer, a promise and a turn
  // of the microtask queue per request. The answer is ready except while a reprovision
  // runs, so the handler reads as synchronous and hands Elysia a promise only then, which
  // Elysia maps once it settles. test/http/app.test.ts checks the answer stays synchronous.
  const answerCurrentState = () => {
    const state = service.current();
    const response = state instanceof Promise ? afterReprovision(state) : answer(state);
    return response;
  };

  return new Elysia().get(
    "/device/provisioninginformation",
    answerCurrentState,
    // No `response` schema: each answer is checked against DeviceProvisioningInfo once,
    // when its state is loaded (provisioning/state.ts), and handed out as ready bytes; a
    // schema here would only have Elysia compile a second validator on the first request.
    { query: ApiVersionQuery },
  );
}

/** After a reprovision notice iotedged restarts and asks again: it gets the new identity. */
function afterReprovision(pending: Promise<ProvisioningState>): Promise<Response> {
  log.debug("request waits for the running reprovision");
  return pending.then(answer);
}

/** The body was serialized and checked against DeviceProvisioningInfo when loaded. */
function answer(state: ProvisioningState): Response {
  return new Response(state.body, { headers: jsonHeaders });
}
