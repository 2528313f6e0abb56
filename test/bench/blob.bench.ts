import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { buildTree, treeUnavailable } from "../support/tree.js";
import { startAzurite, trustCa } from "../integration/blob/support.js";

/**
 * `npm run bench -- blob [--mib N] [--block-mib B] [--concurrency C]`: one run, one Azurite (in memory), one
 * chain of five gateways (child processes on 127.66.3.x:443; the top runs the blob plugin uploading to
 * Azurite, the others https-front). The same @azure/storage-blob upload (N MiB in B MiB blocks, C at once)
 * straight to Azurite, to the top (1 layer) and to the bottom (5 layers); for the layered runs also the time
 * until the top has it in Azurite.
 */
export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  const mib = opt("mib", 256);
  const blockMib = opt("block-mib", 4);
  const concurrency = opt("concurrency", 4);
  const why = treeUnavailable();
  if (why) throw new Error(`blob bench needs loopback addresses on :443: ${String(why)}`);
  const azurite = await startAzurite();
  const secrets = mkdtempSync(join(tmpdir(), "strata-bench-blob-"));
  const key = randomBytes(64).toString("base64");
  writeFileSync(join(secrets, "blob.key"), key, { mode: 0o600 });
  writeFileSync(join(secrets, "cloud.cs"), azurite.connectionString(), { mode: 0o600 });
  const front = { "https-front": {} };
  const tree = await buildTree({
    subnet: "127.66.3",
    logLevel: "info",
    gateways: [
      { id: "top", plugins: { blob: { account_name: "edgelocal", account_key_file: join(secrets, "blob.key"), quota_bytes: 8 * mib * 1024 * 1024, upload: { enabled: true, connection_string_file: join(secrets, "cloud.cs"), delete_after_upload: true, containers: { bench: { target: "bench-up" } } } } } },
      { id: "l2", parent: "top", plugins: front },
      { id: "l3", parent: "l2", plugins: front },
      { id: "l4", parent: "l3", plugins: front },
      { id: "l5", parent: "l4", plugins: front },
    ],
  });
  try {
    await tree.startAll();
    trustCa(tree.caPem);
    const body = randomBytes(mib * 1024 * 1024);
    const options = { blockSize: blockMib * 1024 * 1024, maxSingleShotSize: 1024 * 1024, concurrency };
    const rows: string[] = [];
    const row = (what: string, secs: number, cloudSecs?: number): void => {
      rows.push(`| ${what} | ${mib} | ${(mib / secs).toFixed(0)} | ${cloudSecs === undefined ? "-" : (mib / cloudSecs).toFixed(0)} |`);
    };

    // Azurite directly.
    const direct = azurite.client.getContainerClient("direct");
    await direct.create();
    let t0 = Date.now();
    await direct.getBlockBlobClient("d.bin").uploadData(body, options);
    row("Azurite directly", (Date.now() - t0) / 1000);

    for (const [what, id] of [["1 layer (the top's blob plugin)", "top"], ["5 layers (4 https-fronts, then the top)", "l5"]] as const) {
      const client = new BlobServiceClient(`https://${tree.gw(id).address}:443/blob/edgelocal`, new StorageSharedKeyCredential("edgelocal", key), { retryOptions: { maxTries: 1 } });
      const c = client.getContainerClient("bench");
      await c.createIfNotExists();
      const name = `${id}.bin`;
      const from = tree.root.lines.length;
      t0 = Date.now();
      await c.getBlockBlobClient(name).uploadData(body, options);
      const local = (Date.now() - t0) / 1000;
      await tree.root.waitForLine((l) => l.includes('"msg":"blob uploaded"') && l.includes(`"blob":"${name}"`), 600_000, `${name} in Azurite`, from);
      row(what, local, (Date.now() - t0) / 1000);
    }
    process.stdout.write(`blob upload, ${mib} MiB in ${blockMib} MiB blocks, ${concurrency} at once (@azure/storage-blob ${require("@azure/storage-blob/package.json").version}, azurite in memory)\n`);
    process.stdout.write("| path | MiB | MiB/s acknowledged | MiB/s until in Azurite |\n| --- | --- | --- | --- |\n");
    process.stdout.write(`${rows.join("\n")}\n`);
  } finally {
    await tree.cleanup();
    await azurite.stop();
  }
}
