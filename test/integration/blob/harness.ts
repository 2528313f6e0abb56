import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { definePlugin, TOKENS, type DependencyContainer, type Logger } from "../../../core/index.js";
import blob, { BlobPlugin } from "../../../plugins/blob/index.js";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { gatewayBlobClient } from "./support.js";
import type { BlobServiceClient } from "@azure/storage-blob";

export interface BlobGateway {
  tg: TestGateway;
  plugin: () => BlobPlugin;
  key: string;
  account: string;
  client: BlobServiceClient;
  url: string;
  stop(): Promise<void>;
}

/** A root test gateway running the blob plugin with `settings`; the plugin instance is captured for assertions. */
export async function startBlobGateway(settings: Record<string, unknown> = {}, opts: { dir?: string; cloudConnectionString?: string; root?: boolean; logger?: Logger } = {}): Promise<BlobGateway> {
  let instance: BlobPlugin | undefined;
  const module = definePlugin({
    manifest: blob.manifest,
    register(scope: DependencyContainer) {
      scope.register(TOKENS.Plugin, { useFactory: (c) => (instance = c.resolve(BlobPlugin)) });
    },
  });
  const key = randomBytes(64).toString("base64");
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "strata-blob-gw-"));
  const keyFile = join(dir, "blob-account.key");
  writeFileSync(keyFile, key, { mode: 0o600 });
  const upload = { ...((settings["upload"] as Record<string, unknown> | undefined) ?? {}) };
  if (opts.cloudConnectionString) {
    const csFile = join(dir, "cloud.cs");
    writeFileSync(csFile, opts.cloudConnectionString, { mode: 0o600 });
    upload["connection_string_file"] = csFile;
  }
  const tg = await startTestGateway({ dir, ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.root ? { plugins: ["root"] } : {}), extraPlugins: [{ module, settings: { account_name: "edgelocal", ...settings, account_key_file: keyFile, upload }, essential: true }] });
  const account = (settings["account_name"] as string | undefined) ?? "edgelocal";
  const c = gatewayBlobClient({ host: "localhost", port: tg.port("https"), ca: tg.caPem, account, key });
  return {
    tg, key, account, client: c.client, url: c.url,
    plugin: () => instance!,
    async stop() {
      c.close();
      await tg.stop({ remove: true });
    },
  };
}

/** Resolves at the next "uploaded" of blob `name` (any container when omitted). */
export async function uploaded(p: BlobPlugin, name?: string): Promise<string> {
  for (;;) {
    const [meta, target] = (await once(p.uploader!, "uploaded")) as [{ name: string }, string];
    if (name === undefined || meta.name === name) return target;
  }
}
