import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, statSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { IotEdgeAuthenticationProvider } from "azure-iot-device/dist/iotedge_authentication_provider.js";
import { generateKey } from "../../../core/index.js";
import { WorkloadApi } from "../../../plugins/agent/index.js";

async function startApi(t: { after(fn: () => unknown): void }, key: string) {
  const dir = mkdtempSync(join(tmpdir(), "strata-wl-"));
  const api = new WorkloadApi({
    socketPath: join(dir, "m1.sock"), module: { moduleId: "m1", generationId: "637" },
    keys: () => ({ primary: key }), trustBundle: () => "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
  });
  await api.listen();
  t.after(() => api.close());
  return { api, dir };
}

test("the SDK's own IotEdgeAuthenticationProvider gets the trust bundle and a SAS token signed with the module key over the unix socket", async (t) => {
  const key = generateKey();
  const { api, dir } = await startApi(t, key);
  assert.equal(statSync(join(dir, "m1.sock")).mode & 0o777, 0o600);
  const provider = new IotEdgeAuthenticationProvider({
    workloadUri: api.uri, deviceId: "gw", moduleId: "m1", iothubHostName: "hub", authScheme: "sasToken", gatewayHostName: "gw", generationId: "637",
  } as never);
  const ca = await new Promise<string>((resolve, reject) => provider.getTrustBundle((err, c) => (err ? reject(err) : resolve(c!))));
  assert.match(ca, /BEGIN CERTIFICATE/);
  const creds = await provider.getDeviceCredentials();
  const sas = creds.sharedAccessSignature!;
  const fields = new URLSearchParams(sas.replace("SharedAccessSignature ", ""));
  const expected = createHmac("sha256", Buffer.from(key, "base64")).update(`${fields.get("sr") && encodeURIComponent(fields.get("sr")!)}\n${fields.get("se")}`).digest("base64");
  assert.equal(fields.get("sig"), expected);
  assert.equal(fields.get("sr"), "hub/devices/gw/modules/m1");
  provider.stop();
});

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on("error", reject);
    req.end(text);
  });
}

test("the socket signs only for its own module and generation, HMACSHA256 only, with api-version", async (t) => {
  const { dir } = await startApi(t, generateKey());
  const sock = join(dir, "m1.sock");
  const sign = { keyId: "primary", algo: "HMACSHA256", data: Buffer.from("x").toString("base64") };
  assert.equal((await call(sock, "POST", "/modules/m1/genid/637/sign?api-version=2018-06-28", sign)).status, 200);
  assert.equal((await call(sock, "POST", "/modules/m2/genid/637/sign?api-version=2018-06-28", sign)).status, 404);
  assert.equal((await call(sock, "POST", "/modules/m1/genid/1/sign?api-version=2018-06-28", sign)).status, 404);
  assert.equal((await call(sock, "POST", "/modules/m1/genid/637/sign?api-version=2018-06-28", { ...sign, algo: "SHA1" })).status, 400);
  assert.equal((await call(sock, "POST", "/modules/m1/genid/637/sign", sign)).status, 400);
  const keyReply = await call(sock, "GET", "/trust-bundle?api-version=2018-06-28");
  assert.equal(JSON.stringify(keyReply.body).includes("primaryKey"), false);
});
