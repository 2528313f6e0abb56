import { z } from "zod";

/** Container names as Azure Storage allows them: 3–63 of [a-z0-9-], starting with a letter or digit, no "--". */
export const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;

/** `[plugins.blob.upload.containers.SRC]`: where blobs of local container SRC go in cloud storage. */
export const containerMappingSchema = z.strictObject({
  /** Target container; `%h` hub, `%d` device id, `%m` module ("" here), `%c` source container (IoT Edge's templates). */
  target: z.string().min(1).default("%c"),
});

/** `[plugins.blob.upload]`: IoT Edge's `deviceToCloudUploadProperties`. */
export const uploadSchema = z.strictObject({
  /** `uploadOn`. */
  enabled: z.boolean().default(false),
  /** `uploadOrder`: which committed blob goes first. */
  order: z.enum(["OldestFirst", "NewestFirst"]).default("OldestFirst"),
  /** File (mode 0600) holding `cloudStorageConnectionString` (AccountName, AccountKey, BlobEndpoint or DefaultEndpointsProtocol+EndpointSuffix). */
  connection_string_file: z.string().min(1).optional(),
  /** `storageContainersForUpload`: only the containers named here are uploaded. */
  containers: z.record(z.string().regex(CONTAINER_NAME, "a container name (3-63 of a-z, 0-9, -)"), containerMappingSchema).default({}),
  /** `deleteAfterUpload`: remove the local blob once the cloud has committed it. */
  delete_after_upload: z.boolean().default(false),
  /** Size of the blocks sent to the cloud (the unit that is re-sent after a crash). */
  block_bytes: z.int().min(64 * 1024).max(100 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Blocks of one blob in flight at once. */
  parallel_blocks: z.int().min(1).max(32).default(4),
  /** Backoff after a failed attempt: doubles from min to max. */
  retry_min_ms: z.int().min(10).default(1000),
  retry_max_ms: z.int().min(10).default(60_000),
  /** A cloud request that makes no progress for this long fails (and is retried). */
  timeout_ms: z.int().min(100).default(60_000),
  /** PEM file of CAs trusted for an https cloud endpoint instead of node's bundle. */
  ca_file: z.string().min(1).optional(),
});

/** `[plugins.blob.auto_delete]`: IoT Edge's `deviceAutoDeleteProperties`. */
export const autoDeleteSchema = z.strictObject({
  /** `deleteOn`. */
  enabled: z.boolean().default(false),
  /** `deleteAfterMinutes`: age since the last write. */
  after_minutes: z.number().positive().default(60 * 24),
  /** `retainWhileUploading`: never delete a blob the cloud does not have yet. */
  retain_while_uploading: z.boolean().default(true),
  /** How often to look for expired blobs. */
  sweep_interval_ms: z.int().min(10).default(60_000),
});

/** First path segments other parts of the HTTPS port own (service API, registry, fronts, scope). */
const RESERVED_ROOTS = ["devices", "twins", "modules", "jobs", "configurations", "messages", "statistics", "v2", "parent", "blob"];

/** `[plugins.blob]`: Blob Storage on IoT Edge's REST subset on the HTTPS port, and the upload to cloud storage. */
export const blobConfigSchema = z
  .strictObject({
    /** `LOCAL_STORAGE_ACCOUNT_NAME`: the first path segment after path_prefix. */
    account_name: z.string().regex(/^[a-z0-9]{3,24}$/, "3-24 lowercase letters and digits").default("local"),
    /** File (mode 0600) with `LOCAL_STORAGE_ACCOUNT_KEY` (base64). Absent: `<data_dir>/plugins/blob/account.key`, created on first start. */
    account_key_file: z.string().min(1).optional(),
    /** Where the REST API is mounted on the HTTPS port (the https-front's blob_path_prefix on the layers below). */
    path_prefix: z.string().regex(/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/).default("/blob"),
    /**
     * Keep a blob store here and serve the REST API. false (a lower gateway): no store; the log and support
     * methods upload to the parent's front (`<parent>:<https_port><path_prefix>/<account_name>`, signed with
     * account_key_file: the top's account key); set `[plugins.https-front] blob = "parent"` for local clients.
     */
    local_store: z.boolean().default(true),
    /** Also serve `https://<gw>/<account>/…` (Blob Storage on IoT Edge's own path-style URL). */
    serve_account_root: z.boolean().default(true),
    /** Bytes of blob content (committed and staged) kept locally; beyond it writes are refused (507, or 503 while uploads will free space). */
    quota_bytes: z.int().min(1024 * 1024).default(10 * 1024 ** 3),
    /** x-ms-date may differ from this gateway's clock by at most this much; a signature is accepted once within it (replay). */
    max_clock_skew_secs: z.int().min(1).max(3600).default(900),
    upload: uploadSchema.default(uploadSchema.parse({})),
    auto_delete: autoDeleteSchema.default(autoDeleteSchema.parse({})),
    /** Register `UploadModuleLogs`, `UploadSupportBundle` and `GetTaskStatus` on module `{device}/$edgeAgent`. */
    methods: z.boolean().default(true),
    /** Local container the methods write logs and support bundles into (map it under upload.containers to send them up). */
    support_container: z.string().regex(CONTAINER_NAME).default("strata-support"),
  })
  .superRefine((c, ctx) => {
    if (c.serve_account_root && RESERVED_ROOTS.includes(c.account_name)) {
      ctx.addIssue({ code: "custom", path: ["account_name"], message: `"${c.account_name}" would shadow /${c.account_name} on the HTTPS port (${RESERVED_ROOTS.join(", ")} are taken); pick another name or set serve_account_root = false` });
    }
    if (c.upload.enabled && !c.upload.connection_string_file) {
      ctx.addIssue({ code: "custom", path: ["upload", "connection_string_file"], message: "upload.enabled needs connection_string_file (a 0600 file with the cloud storage connection string)" });
    }
    if (c.upload.retry_max_ms < c.upload.retry_min_ms) {
      ctx.addIssue({ code: "custom", path: ["upload", "retry_max_ms"], message: "must be >= upload.retry_min_ms" });
    }
  });

export type BlobConfig = z.output<typeof blobConfigSchema>;
export type UploadConfig = z.output<typeof uploadSchema>;
export type AutoDeleteConfig = z.output<typeof autoDeleteSchema>;
