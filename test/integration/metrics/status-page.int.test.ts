// /status rendered by Debian's chromium (headless, through playwright-core: no browser download), the DOM
// asserted and a screenshot kept as an artifact.
import assert from "node:assert/strict";
import { mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { needPeer } from "../../support/peers.js";
import { startTestGateway } from "../../support/gateway.js";
import { eventually, get, metricsEntry, ownerToken } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
/** Where the screenshot is kept (CI collects it). */
const ARTIFACTS = process.env.STRATA_ARTIFACTS ?? join(tmpdir(), "strata-artifacts");

test("the status page shows the tree with each gateway's link in headless chromium", { skip: needPeer("chromium", CHROMIUM) }, async (t) => {
  const root = await startTestGateway({ deviceId: "root", plugins: ["amqp"], extraPlugins: [metricsEntry()] });
  const { key } = await root.addDevice("gw-child", { edge: true });
  const child = await startTestGateway({ deviceId: "gw-child", extraPlugins: [metricsEntry()], parent: { gateway: root, key } });
  // One cleanup, in order: the browser, then the child, then its parent.
  let browserClose: (() => Promise<void>) | undefined;
  t.after(async () => {
    await browserClose?.();
    await child.stop({ remove: true });
    await root.stop({ remove: true });
  });
  await eventually("the child reported", async () => {
    const v = JSON.parse((await get(root, "/$strata/metrics/tree", ownerToken(root))).body) as { nodes: { device: string; state?: { link?: { status: string } } }[] };
    const child = v.nodes.find((n) => n.device === "gw-child") as { state?: { link?: { status: string }; clock?: unknown } } | undefined;
    return child?.state?.link?.status === "connected" && child.state.clock ? true : undefined;
  });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  browserClose = () => browser.close();
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 400 } });
  const page = await context.newPage();
  // The page is reached from loopback, so access = "local" lets chromium in without a token.
  const res = await page.goto(`https://127.0.0.1:${root.port("https")}/status`);
  assert.equal(res?.status(), 200);
  assert.equal(await page.title(), "Strata — root");
  const rows = await page.$$eval("#tree tbody tr", (trs) => trs.map((tr) => ({
    device: tr.getAttribute("data-device"), depth: tr.getAttribute("data-depth"),
    link: tr.querySelector(".link")?.textContent, children: tr.querySelector(".children")?.textContent,
    clock: tr.querySelector(".clock")?.textContent,
  })));
  assert.deepEqual(rows, [
    { device: "root", depth: "0", link: "root", children: "1", clock: "-" },
    { device: "gw-child", depth: "1", link: "connected", children: "0", clock: rows[1]?.clock },
  ]);
  assert.match(rows[1]!.clock!, /^[+-]\d+ ms$/, "the child's clock offset to the root, in ms");
  // The child is indented under the root.
  const [rootPad, childPad] = await page.$$eval("#tree td.name", (tds) => tds.map((td) => parseFloat((td.getAttribute("style") ?? "").replace(/^padding-left:/, ""))));
  assert.ok(childPad! > rootPad!, `child indented (${childPad} > ${rootPad})`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, "metrics-status-page.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 1000, "a real screenshot was written");
});
