// Drives one headless chromium page for the integration tests: JSON commands in, one per line on
// stdin, JSON replies out, one per line on stdout.
//
//   node driver.mjs --user-data-dir DIR --shots DIR [--chromium PATH] [--chromium-arg ARG]...
//
// First line out: {"ready":true} (or {"ready":false,"error":...}). Then each command
// {"id":N,"op":"...",...} gets {"id":N,"ok":true,"result":...,"at_ms":T} or
// {"id":N,"ok":false,"error":"...","screenshot":"PATH","at_ms":T}; at_ms is a monotonic clock
// in milliseconds (the same for every reply), so the caller can time steps between replies.
// Any failed command leaves a full-page screenshot in the shots folder.
//
// Ops: goto {url} | fill {selector,value} | select {selector,value} | check {selector,checked}
//      click {selector} | click_popup {selector} -> URL the page it opens asks for (the request
//      is aborted, the page closed)
//      wait {selector,state,timeout_ms} | wait_text {selector,text,timeout_ms}
//      text {selector} | attr {selector,name} | count {selector} | eval {expr}
//      dialogs -> messages of the dialogs seen (all accepted) | errors -> page errors seen
//      screenshot {name} -> path | close
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const userDataDir = arg("--user-data-dir");
const shots = arg("--shots");
const executablePath = arg("--chromium", "/usr/bin/chromium");
// extra chromium switches, e.g. --host-resolver-rules=... (each after its own --chromium-arg)
const extraArgs = process.argv.flatMap((a, i) =>
  a === "--chromium-arg" && i + 1 < process.argv.length ? [process.argv[i + 1]] : []);
const t0 = performance.now();
const now = () => Math.round((performance.now() - t0) * 10) / 10;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

if (!userDataDir || !shots) {
  out({ ready: false, error: "usage: driver.mjs --user-data-dir DIR --shots DIR" });
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

let context, page;
const dialogs = [];
const errors = [];
let shotCount = 0;

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    // chromium's own network features would reach out: the test machine has no such network
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           ...extraArgs],
    viewport: { width: 1400, height: 1000 },
    timeout: 60000,
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  page.on("dialog", (d) => {
    dialogs.push(d.type() + ": " + d.message());
    d.accept().catch(() => {});
  });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push("console: " + m.text());
  });
} catch (e) {
  out({ ready: false, error: String(e && e.message ? e.message : e) });
  process.exit(1);
}

async function screenshot(name) {
  const safe = String(name).replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 80);
  const file = path.join(shots, String(++shotCount).padStart(3, "0") + "-" + safe + ".png");
  await page.screenshot({ path: file, fullPage: true, timeout: 15000 });
  return file;
}

async function run(c) {
  const timeout = c.timeout_ms;
  switch (c.op) {
    case "goto":
      await page.goto(c.url, { waitUntil: "load", timeout: timeout || 30000 });
      return page.url();
    case "fill":
      await page.fill(c.selector, c.value, { timeout });
      return null;
    case "select":
      return page.selectOption(c.selector, c.value, { timeout });
    case "check":
      await page.setChecked(c.selector, c.checked !== false, { timeout });
      return null;
    case "click":
      await page.click(c.selector, { timeout });
      return null;
    case "click_popup": {
      // the page the click opens is not loaded: its first request is recorded and aborted
      const origin = new URL(page.url()).origin;
      const seen = [];
      const handler = (route) => {
        seen.push(route.request().url());
        route.abort().catch(() => {});
      };
      const elsewhere = (u) => u.origin !== origin;
      await context.route(elsewhere, handler);
      try {
        const [popup] = await Promise.all([
          context.waitForEvent("page", { timeout: timeout || 15000 }),
          page.click(c.selector, { timeout }),
        ]);
        for (let i = 0; i < 100 && !seen.length; i++) await new Promise((r) => setTimeout(r, 50));
        await popup.close().catch(() => {});
      } finally {
        await context.unroute(elsewhere, handler).catch(() => {});
      }
      if (!seen.length) throw new Error("the page opened made no request");
      return seen[0];
    }
    case "wait":
      await page.waitForSelector(c.selector, { state: c.state || "visible", timeout });
      return null;
    case "wait_text":
      await page.waitForFunction(
        ([sel, text]) => {
          const e = document.querySelector(sel);
          return !!e && e.textContent.includes(text);
        },
        [c.selector, c.text],
        { timeout: timeout || 15000, polling: 100 });
      return page.textContent(c.selector);
    case "text":
      return page.textContent(c.selector, { timeout });
    case "attr":
      return page.getAttribute(c.selector, c.name, { timeout });
    case "count":
      return page.locator(c.selector).count();
    case "eval":
      return page.evaluate(c.expr);
    case "dialogs":
      return dialogs.slice();
    case "errors":
      return errors.slice();
    case "screenshot":
      return screenshot(c.name || "shot");
    default:
      throw new Error("unknown op " + c.op);
  }
}

out({ ready: true, at_ms: now() });

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    out({ id: null, ok: false, error: "not JSON: " + e.message, at_ms: now() });
    continue;
  }
  if (c.op === "close") {
    await context.close().catch(() => {});
    out({ id: c.id, ok: true, result: null, at_ms: now() });
    break;
  }
  try {
    const result = await run(c);
    out({ id: c.id, ok: true, result: result === undefined ? null : result, at_ms: now() });
  } catch (e) {
    const at = now();
    let shot = null;
    try {
      shot = await screenshot("failed-" + c.op);
    } catch (e2) { /* the page may be gone */ }
    out({ id: c.id, ok: false, error: String(e && e.message ? e.message : e), screenshot: shot, at_ms: at });
  }
}
await context.close().catch(() => {});
process.exit(0);
