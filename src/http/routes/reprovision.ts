/**
 * POST /device/reprovision?api-version=2019-04-10: iotedged's notice that the device may
 * have moved to another hub (only sent when its `dynamic_reprovisioning` is on).
 */
import { Elysia } from "elysia";
import { ApiVersionQuery, ErrorResponse } from "../schemas.ts";
import type { ProvisioningService } from "../../provisioning/service.ts";

export function reprovisionRoute(service: ProvisioningService) {
  return new Elysia().post(
    "/device/reprovision",
    async () => {
      const failure = await service.reprovision();
      return failure ?? new Response(null, { status: 200 });
    },
    {
      query: ApiVersionQuery,
      response: { 400: ErrorResponse, 500: ErrorResponse },
    },
  );
}
