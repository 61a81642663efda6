/**
 * /device/reprovision?api-version=2019-04-10: iotedged's notice that the device may have
 * moved to another hub (sent only when its `dynamic_reprovisioning` is on).
 *
 * The swagger says POST, but iotedged 1.1's generated client
 * (edgelet/external-provisioning/src/apis/external_provisioning_api.rs) sends GET with an
 * empty body and treats any 2xx as success, ignoring the body. Both methods are answered.
 *
 * The answer comes once the hook (if any) has run and the new state is served; a failure
 * keeps the last good state and is answered with an ErrorResponse saying why.
 */
import { Elysia } from "elysia";
import { errorResponse } from "../errors.ts";
import { ApiVersionQuery } from "../schemas.ts";
import type { ProvisioningService } from "../../provisioning/service.ts";

export const reprovisionMethods = ["GET", "POST"] as const;

export function reprovisionRoute(service: ProvisioningService) {
  const handle = async () => {
    const failure = await service.reprovision();
    if (failure) return errorResponse(failure.status, failure.message);
    return new Response(null, { status: 200 });
  };
  // Answers are an empty 200 or an ErrorResponse made by errorResponse(), as Response
  // objects, which Elysia would not validate against a `response` schema anyway.
  const options = { query: ApiVersionQuery };

  return new Elysia()
    .get("/device/reprovision", handle, options)
    .post("/device/reprovision", handle, options);
}
