import { z } from "zod";

/** A TCP port a gateway listens on; 0 means "any free port" (tests). */
const listenPort = z.int().min(0).max(65535);
/** A TCP port a gateway connects to. */
const remotePort = z.int().min(1).max(65535);
/** A file path; relative paths resolve against the config file's folder. */
const filePath = z.string().min(1);
/** IoT Hub's device id alphabet: up to 128 of `A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '`. */
const deviceId = z.string().regex(/^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/, {
  message: "must be 1–128 characters of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '",
});

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const logLevelSchema = z.enum(LOG_LEVELS);

/** `[identity]`: this gateway's own credential: `key_file` alone (SAS), or `cert_file` + `key_file` (X.509). */
export const identitySchema = z.strictObject({
  key_file: filePath,
  cert_file: filePath.optional(),
});

/** `[parent]`: absent on the root. */
export const parentSchema = z.strictObject({
  hostname: z.string().min(1),
  /** Where to connect when `hostname` (the TLS name) does not resolve, e.g. a loopback alias in tests. */
  address: z.string().min(1).optional(),
  amqp_port: remotePort.default(5671),
  https_port: remotePort.default(443),
  /** `amqps` on amqp_port, `wss` (AMQP over WebSocket) on https_port, `auto` tries amqps then wss. */
  transport: z.enum(["amqps", "wss", "auto"]).default("auto"),
});

/** `[tls]`: the server certificate of this gateway and the trust bundle (the hierarchy's root CA). */
export const tlsSchema = z
  .strictObject({
    cert_file: filePath,
    key_file: filePath,
    ca_file: filePath,
    /**
     * This gateway's edge CA (PEM: the edge CA first, then its issuers up to but not including the root CA), used
     * to issue children's server certificates and edge CAs (`strata child add`). Optional: without it a gateway
     * serves but cannot set up children.
     */
    edge_ca_cert_file: filePath.optional(),
    /** The edge CA's private key (mode 0600). Set together with edge_ca_cert_file. */
    edge_ca_key_file: filePath.optional(),
  })
  .refine((t) => (t.edge_ca_cert_file === undefined) === (t.edge_ca_key_file === undefined), {
    message: "edge_ca_cert_file and edge_ca_key_file go together: set both (the edge CA and its key) or neither",
    path: ["edge_ca_key_file"],
  });

/** `[listen]`: one place where an operator sees every port. */
export const listenSchema = z.strictObject({
  address: z.string().min(1).default("127.0.0.1"),
  mqtt: listenPort.default(8883),
  amqp: listenPort.default(5671),
  https: listenPort.default(443),
  /**
   * TLS handshakes in progress at once, every TLS listener together; connections beyond wait their turn
   * (a parent that comes back is not stampeded by every child and device reconnecting at once).
   */
  max_tls_handshakes: z.int().min(1).max(100_000).default(32),
});

/** `[store]`: the durable store's bounds. */
export const storeSchema = z.strictObject({
  /** Disk quota; at the quota the gateway stops acknowledging new messages (back-pressure). Default 1 GiB. */
  quota_bytes: z.int().min(1).default(1024 ** 3),
  /** TTL of a message whose route sets none (IoT Hub's store-and-forward default). */
  default_ttl_secs: z.int().min(1).default(7200),
  /**
   * Largest part of the quota one share may hold while another share has messages queued (a share: a child
   * gateway for what it forwards, a device for itself), so one flooding child cannot fill the disk for all.
   * 1 turns the limit off.
   */
  share_quota: z.number().gt(0).max(1).default(0.5),
});

/** A route: IoT Hub's syntax as a string, or a table with priority 0–9 (0 highest) and a TTL. */
export const routeSchema = z.union([
  z.string().min(1),
  z.strictObject({
    route: z.string().min(1),
    priority: z.int().min(0).max(9).default(0),
    ttl_secs: z.int().min(1).optional(),
  }),
]);

/** `[service]`: the root's service API. */
export const serviceSchema = z.strictObject({
  /** The `iothubowner` policy key (a file, mode 0600). */
  owner_key_file: filePath,
});

export const logSchema = z.strictObject({
  level: logLevelSchema.default("info"),
});

/** The whole file. Unknown keys are refused at every level (a misspelt key is an error, never ignored). */
export const strataConfigSchema = z
  .strictObject({
    hub: z.string().min(1),
    device_id: deviceId,
    hostname: z.string().min(1),
    data_dir: filePath,
    /**
     * Identities this gateway serves directly at once, across every head: leaves, modules and child gateways
     * (IoT Edge's MaxConnectedClients). Identities behind a child gateway do not count. Enforced on reconnect too.
     */
    max_clients: z.int().min(1).default(100),
    identity: identitySchema.optional(),
    parent: parentSchema.optional(),
    tls: tlsSchema,
    listen: listenSchema.prefault({}),
    store: storeSchema.prefault({}),
    routes: z.record(z.string(), routeSchema).default({}),
    service: serviceSchema.optional(),
    log: logSchema.prefault({}),
    /** Raw sections handed to the plugin host, which validates each against its plugin's schema. */
    plugins: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .superRefine((c, ctx) => {
    if (c.parent && c.service) {
      ctx.addIssue({ code: "custom", path: ["service"], message: "only the root (no [parent]) serves the service API; remove [service] or [parent]" });
    }
    if (c.parent && !c.identity) {
      ctx.addIssue({ code: "custom", path: ["identity"], message: "is required when [parent] is set (the gateway's own key_file, or cert_file + key_file)" });
    }
  });

export type StrataConfig = z.output<typeof strataConfigSchema>;
export type IdentityConfig = z.output<typeof identitySchema>;
export type ParentConfig = z.output<typeof parentSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type ListenConfig = z.output<typeof listenSchema>;
export type StoreConfig = z.output<typeof storeSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type LogConfig = z.output<typeof logSchema>;
/** What a config file may contain before defaults (what `embeddedDefaultConfig` and tests build). */
export type StrataConfigInput = z.input<typeof strataConfigSchema>;
