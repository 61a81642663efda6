/**
 * The External Provisioning API (version 2019-04-10) as TypeBox schemas, from
 * externalProvisioningVersion_2019_04_10.yaml. The routes validate the query with
 * ApiVersionQuery; each provisioning answer is checked against DeviceProvisioningInfo
 * once, when its state is loaded; error answers are typed as ErrorResponse.
 */
import { Type, type Static } from "@sinclair/typebox";
import { ProvisioningStatus, ProvisioningSubstatus } from "../config/schema.ts";

export const apiVersion = "2019-04-10";

/** iotedged 1.1 sends this version on every call; it is the only one there is. */
export const ApiVersionQuery = Type.Object({
  "api-version": Type.Literal(apiVersion, { description: "The version of the API" }),
});

export const Credentials = Type.Object({
  authType: Type.Union([Type.Literal("symmetric-key"), Type.Literal("x509")]),
  source: Type.Union([Type.Literal("payload"), Type.Literal("hsm")]),
  key: Type.Optional(Type.String({ description: "base64 symmetric key" })),
  identityCert: Type.Optional(Type.String({ description: "base64 of PEM, or a path for hsm" })),
  identityPrivateKey: Type.Optional(
    Type.String({ description: "base64 of PEM, or a path for hsm" }),
  ),
});

export const DeviceProvisioningInfo = Type.Object({
  hubName: Type.String(),
  deviceId: Type.String(),
  credentials: Credentials,
  status: Type.Optional(ProvisioningStatus),
  substatus: Type.Optional(ProvisioningSubstatus),
});

export const ErrorResponse = Type.Object({ message: Type.String() });

export type Credentials = Static<typeof Credentials>;
export type DeviceProvisioningInfo = Static<typeof DeviceProvisioningInfo>;
export type ErrorResponse = Static<typeof ErrorResponse>;
