// https-front routes blob requests by their x-ms-version header as well as by the blob path prefix:
// @azure/storage-blob at a child, on the account-root URL (no /blob prefix), reaches the parent's blob plugin.
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestGateway, type TestGateway } from "../../support/gateway.js";
import { gatewayBlobClient } from "../blob/support.js";
import { fetchFront, secretFile, startFrontChild } from "./support/harness.js";

const ACCOUNT = "edgelocal";

describe("https-front: x-ms-version routes blob requests", () => {
  let root: TestGateway;
  let child: TestGateway;
  const key = randomBytes(64).toString("base64");

  before(async () => {
    // From config sections, as a deployed gateway loads them: the front sees [plugins.blob] and leaves blob local.
    root = await startTestGateway({
      plugins: ["root"], // the service API, which no header may reach from below
      config: { plugins: { blob: { account_name: ACCOUNT, account_key_file: secretFile(key), methods: false }, "https-front": {} } },
    });
    // The child has no [plugins.blob]: its front sends blob requests to the root.
    child = await startFrontChild(root, "gw-blob");
  });
  after(async () => {
    await child?.stop({ remove: true });
    await root?.stop({ remove: true });
  });

  test("@azure/storage-blob on the child's account-root URL reaches the root's blob plugin", async () => {
    const viaChild = gatewayBlobClient({ host: "localhost", port: child.port("https"), ca: child.caPem, account: ACCOUNT, key, prefix: "" });
    assert.equal(viaChild.url, `https://localhost:${child.port("https")}/${ACCOUNT}`);
    const container = viaChild.client.getContainerClient("by-header");
    await container.create();
    const body = randomBytes(3 * 1024 * 1024 + 7);
    await container.getBlockBlobClient("a.bin").uploadData(body, { blockSize: 1024 * 1024, maxSingleShotSize: 1024 * 1024 });
    const names: string[] = [];
    for await (const b of container.listBlobsFlat()) names.push(b.name);
    assert.deepEqual(names, ["a.bin"]);
    assert.ok((await container.getBlobClient("a.bin").downloadToBuffer()).equals(body));
    // It is in the root's store: read back through the root's own prefix URL.
    const atRoot = gatewayBlobClient({ host: "localhost", port: root.port("https"), ca: root.caPem, account: ACCOUNT, key });
    assert.ok((await atRoot.client.getContainerClient("by-header").getBlobClient("a.bin").downloadToBuffer()).equals(body));
  });

  test("a raw request with the header is forwarded; without it, or on a service API path, it is not", async () => {
    const port = child.port("https");
    const withHeader = await fetchFront(port, child.caPem, `/${ACCOUNT}?comp=list`, { auth: null, headers: { "x-ms-version": "2021-08-06" } });
    // The root's blob plugin answered: an unsigned request is Storage's 401, in Storage's XML.
    assert.equal(withHeader.status, 401);
    assert.equal(withHeader.headers["x-ms-error-code"], "NoAuthenticationInformation");
    const without = await fetchFront(port, child.caPem, `/${ACCOUNT}?comp=list`, { auth: null });
    assert.equal(without.status, 404);
    assert.equal(without.headers["x-ms-error-code"], undefined);
    // The header never opens the root's service API through a child.
    const service = await fetchFront(port, child.caPem, "/devices/gw-blob?api-version=2021-04-12", { auth: null, headers: { "x-ms-version": "2021-08-06" } });
    assert.equal(service.status, 404);
    assert.doesNotMatch(service.body.toString(), /unauthor/i);
  });

  test("on a gateway with its own blob plugin, a header request elsewhere gets Storage's 404 naming the served paths; routes keep their own answers", async () => {
    const port = root.port("https");
    const r = await fetchFront(port, root.caPem, "/elsewhere/c/b", { auth: null, headers: { "x-ms-version": "2021-08-06" } });
    assert.equal(r.status, 404);
    assert.equal(r.headers["x-ms-error-code"], "ResourceNotFound");
    assert.match(r.body.toString(), /\/elsewhere\/c\/b is not a blob path.*\/blob\/… and \/edgelocal\/…/);
    // The root's service API (a fastify route) answers for itself, header or not.
    const service = await fetchFront(port, root.caPem, "/devices/gw-blob?api-version=2021-04-12", { auth: null, headers: { "x-ms-version": "2021-08-06" } });
    assert.equal(service.status, 401);
  });
});
