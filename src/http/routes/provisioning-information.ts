/**
 * GET /device/provisioninginformation?api-version=2019-04-10: the device's hub, id and
 * credentials, as iotedged reads them at every start.
 */
import { Elysia } from "elysia";
import { ApiVersionQuery, DeviceProvisioningInfo, ErrorResponse } from "../schemas.ts";
import type { ProvisioningService } from "../../provisioning/service.ts";

const jsonHeaders = { "content-type": "application/json" };

export function provisioningInformationRoute(service: ProvisioningService) {
  return new Elysia().get(
    "/device/provisioninginformation",
    () => {
      // The body was serialized and checked against DeviceProvisioningInfo when loaded.
      return new Response(service.current().body, { headers: jsonHeaders });
    },
    {
      query: ApiVersionQuery,
      response: { 200: DeviceProvisioningInfo, 400: ErrorResponse, 500: ErrorResponse },
    },
  );
}
