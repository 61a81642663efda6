/**
 * The configuration file's schema. Every object is closed (`additionalProperties: false`)
 * so a misspelt field is reported instead of silently ignored.
 */
import { Type, type Static } from "@sinclair/typebox";

const closed = { additionalProperties: false } as const;

/** The values DPS uses, the only ones the External Provisioning API allows. */
export const ProvisioningStatus = Type.Union([
  Type.Literal("assigned"),
  Type.Literal("assigning"),
  Type.Literal("disabled"),
  Type.Literal("failed"),
  Type.Literal("unassigned"),
]);

export const ProvisioningSubstatus = Type.Union([
  Type.Literal("deviceDataMigrated"),
  Type.Literal("deviceDataReset"),
  Type.Literal("initialAssignment"),
  Type.Literal("deviceDataUpdated"),
]);

/** A user or group: a name from /etc/passwd or /etc/group, or a numeric id. */
const Principal = Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })]);

export const DeviceSection = Type.Object(
  {
    hubName: Type.Optional(Type.String({ description: "IoT hub host name" })),
    deviceId: Type.Optional(Type.String({ description: "device id in the hub" })),
    status: Type.Optional(ProvisioningStatus),
    substatus: Type.Optional(ProvisioningSubstatus),
  },
  closed,
);

/**
 * Exactly one of `key` and `file`; or `source: hsm` and neither, when the key already
 * lives in iotedged's own HSM (such as a TPM) and only its use is announced.
 */
export const SymmetricKeySection = Type.Object(
  {
    source: Type.Optional(Type.Union([Type.Literal("payload"), Type.Literal("hsm")])),
    key: Type.Optional(Type.String()),
    file: Type.Optional(Type.String({ minLength: 1 })),
  },
  closed,
);

/** Exactly one of `value` and `file`. */
export const ConnectionStringSection = Type.Object(
  { value: Type.Optional(Type.String()), file: Type.Optional(Type.String({ minLength: 1 })) },
  closed,
);

export const X509Section = Type.Object(
  {
    source: Type.Union([Type.Literal("payload"), Type.Literal("hsm")]),
    certificate: Type.String({ minLength: 1 }),
    privateKey: Type.String({ minLength: 1 }),
  },
  closed,
);

/** Exactly one kind of credential. */
export const CredentialsSection = Type.Object(
  {
    symmetricKey: Type.Optional(SymmetricKeySection),
    connectionString: Type.Optional(ConnectionStringSection),
    x509: Type.Optional(X509Section),
  },
  closed,
);

export const SocketSection = Type.Object(
  {
    owner: Type.Optional(Principal),
    group: Type.Optional(Principal),
    mode: Type.Optional(Type.String({ pattern: "^0?[0-7]{3}$" })),
  },
  closed,
);

export const ListenSection = Type.Object(
  {
    endpoint: Type.Optional(Type.String({ minLength: 1 })),
    socket: Type.Optional(SocketSection),
    allowNonLoopback: Type.Optional(Type.Boolean()),
  },
  closed,
);

export const RunAsSection = Type.Object(
  { user: Principal, group: Type.Optional(Principal) },
  closed,
);

export const SecuritySection = Type.Object(
  {
    allowInsecureSecretFiles: Type.Optional(Type.Boolean()),
    allowWorldAccessibleSocket: Type.Optional(Type.Boolean()),
  },
  closed,
);

/** What to serve after a reload has changed the hub or the device. */
export const AfterIdentityChangeSection = Type.Object(
  { status: Type.Optional(ProvisioningStatus), substatus: Type.Optional(ProvisioningSubstatus) },
  closed,
);

/** What iotedged's reprovision notice runs: a program (argv, no shell), then a reload. */
export const ReprovisionSection = Type.Object(
  {
    hook: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
    afterIdentityChange: Type.Optional(AfterIdentityChangeSection),
  },
  closed,
);

export const ConfigFile = Type.Object(
  {
    device: Type.Optional(DeviceSection),
    credentials: CredentialsSection,
    listen: Type.Optional(ListenSection),
    runAs: Type.Optional(RunAsSection),
    security: Type.Optional(SecuritySection),
    reprovision: Type.Optional(ReprovisionSection),
  },
  closed,
);

export type ConfigFile = Static<typeof ConfigFile>;
export type ProvisioningStatus = Static<typeof ProvisioningStatus>;
export type ProvisioningSubstatus = Static<typeof ProvisioningSubstatus>;
export type Principal = Static<typeof Principal>;
