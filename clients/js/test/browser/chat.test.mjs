// The chat demo (docs/examples/chat) in headless Debian Chromium, driven by puppeteer-core (the
// system browser; nothing is downloaded): ada and bob chat through two relays on one Redis; ada's
// relay is drained mid-conversation and her page reconnects to the other relay, recovering what it
// missed. Both pages must end with every message exactly once, in order, and ada's must have shown
// the reconnecting state. The run saves a screenshot to test-output/chat-demo.png.
//
// Each relay has its own app process (relay + app = one pod of the sidecar pattern): the hook's
// connection ids are unique per relay only, so one app behind two relays would mix connections up.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { cleanup, freePort, HOST, logs, skipReason, startHookApp, startRedis, startRelay } from "../harness.mjs";

const CHROMIUM = "/usr/bin/chromium";
const PKG = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUTPUT = join(PKG, "test-output");
const ROOM = "chat:lobby";
const WAIT_MS = 30000; // every wait for the page: generous, a busy 2-core box runs Chromium slowly
const JWT_SECRET = "browser-test-jwt-secret-0123456789abcdef";
const HOOK_SECRET = "browser-test-hook-secret";
const API_KEY = "browser-test-api-key";
// The conversation, message i (from 1) at LINES[i - 1]: ada and bob alternate, bob alone while ada's
// relay drains (11-18). Every text is unique, so a duplicate or a loss shows.
const LINES = [
  "hi bob", "hi ada! how is the new relay?", "the app's hook sees every step", "and it issues our tokens",
  "let's drain my relay", "go ahead, I'll keep talking", "one", "two", "three", "four",
  "ada, are you there?", "your relay is draining", "I keep talking anyway", "you should get all of this",
  "still typing", "the channel keeps a history", "offset by offset", "no gaps, no duplicates",
  "back! on the other relay now", "did you miss anything?", "nothing, it was all recovered", "in order?",
  "in order, each one once", "nice", "the client waited with jitter", "and asked the app for a new token",
  "ship it?", "ship it", "shipping", "bye",
];

const skip = skipReason() ?? (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`);

let browser;
const pageLogs = [];

before(async () => {
  if (skip) return;
  if (!existsSync(join(PKG, "dist", "wsrelay-client.min.js"))) throw new Error("dist/ is missing: npm run build first");
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await cleanup();
});

function relayConfig(redis, appPort) {
  return {
    broker: { type: "redis", redis: { url: redis.url, reconnect_min_ms: 20, reconnect_max_ms: 200 } },
    auth: { enabled: true, jwt: { secret: JWT_SECRET } },
    hook: { url: `http://${HOST}:${appPort}/hook`, secret: HOOK_SECRET, routes: ["chat:*=hook"] },
    channels: [{ pattern: "chat:*", history_size: 100 }],
    api: { key: API_KEY },
    drain: { window_ms: 1000 },
  };
}

async function openPage(url, label) {
  const context = await browser.createBrowserContext(); // two users: nothing shared between them
  const page = await context.newPage();
  await page.setViewport({ width: 900, height: 960 });
  page.on("console", (m) => pageLogs.push(`${label} console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => pageLogs.push(`${label} pageerror: ${e.message}`));
  await page.goto(url, { waitUntil: "load", timeout: WAIT_MS });
  return page;
}

const waitIn = (page, fn, what, ...args) =>
  page.waitForFunction(fn, { timeout: WAIT_MS, polling: 50 }, ...args)
    .catch((e) => { throw new Error(`${what}: ${e.message}`); });

async function joinAs(page, name) {
  await page.type("#name", name);
  await page.click("#join button");
  await waitIn(page, (room) => window.__chat.subscribed[room] >= 1, `${name} subscribed`, ROOM);
}

// Types a message into the page's form, sends it and waits for the relay's ack.
async function say(page, text) {
  await page.type("#text", text);
  await page.keyboard.press("Enter");
  await waitIn(page, (t) => window.__chat.acked.includes(t) || window.__chat.failed.some((f) => f.text === t),
               `ack of "${text}"`, text);
  const failed = await page.evaluate((t) => window.__chat.failed.find((f) => f.text === t), text);
  assert.equal(failed, undefined, `"${text}" was not sent: ${JSON.stringify(failed)}`);
}

const chatState = (page) => page.evaluate((room) => ({
  ...window.__chat,
  shown: [...document.querySelectorAll("#messages li:not(.system)")].map((li) => li.querySelector(".text").textContent),
  reconnectVisible: !document.getElementById("reconnect").hidden,
  room,
}), ROOM);

function checkExactlyOnce(state, expected, who) {
  const delivered = state.delivered[ROOM];
  // Every message of the room, system notices too, came once: offsets 1 apart in one epoch.
  for (let i = 1; i < delivered.length; i++) {
    assert.equal(delivered[i].epoch, delivered[0].epoch, `${who}: epoch changed at ${i}`);
    assert.equal(delivered[i].offset, delivered[i - 1].offset + 1,
                 `${who}: offset ${delivered[i - 1].offset} then ${delivered[i].offset}`);
  }
  const chat = delivered.filter((m) => !m.data.system).map((m) => ({ from: m.data.from, text: m.data.text }));
  const key = (m) => `${m.from}: ${m.text}`;
  assert.deepEqual(chat.map(key).sort(), expected.map(key).sort(), `${who}: every message exactly once`);
  for (const sender of ["ada", "bob"]) { // one publisher's messages arrive in the order it sent them
    assert.deepEqual(chat.filter((m) => m.from === sender), expected.filter((m) => m.from === sender),
                     `${who}: ${sender}'s messages in order`);
  }
  const texts = chat.map((m) => m.text);
  assert.deepEqual(state.shown, texts, `${who}: the page shows what was delivered, in offset order`);
  assert.ok(delivered.filter((m) => m.data.system && m.data.text === "ada joined").length <= 1,
            `${who}: ada is announced once, not at every reconnect`);
  assert.deepEqual(state.gaps, [], `${who}: no gap (the reconnect recovered)`);
  assert.deepEqual(state.failed, [], `${who}: every publish acked`);
  assert.deepEqual(state.errors, [], `${who}: no client errors`);
  return texts;
}

assert.equal(new Set(LINES).size, LINES.length);

test("two pages chat through two relays; one relay drains; every message arrives once", { skip, timeout: 240000 }, async () => {
  try {
    const redis = await startRedis();
    const appPorts = [await freePort(), await freePort()];
    const relays = [await startRelay(relayConfig(redis, appPorts[0])), await startRelay(relayConfig(redis, appPorts[1]))];
    const urls = relays.map((r) => r.wsUrl).join(",");
    const apps = [];
    for (const [i, port] of appPorts.entries()) {
      apps.push(await startHookApp({
        secret: HOOK_SECRET,
        args: [String(port)],
        env: { DEMO: "1", JWT_SECRET, RELAY_URLS: urls, RELAY_API_KEY: API_KEY,
               RELAY_API_URL: [relays[i], relays[1 - i]].map((r) => r.httpUrl).join(",") },
      }));
    }

    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"],
                                       protocolTimeout: 120000 });
    const ada = await openPage(`${apps[0].url}/?relay=0`, "ada"); // starts on relay 0, the one drained
    const bob = await openPage(`${apps[0].url}/?relay=1`, "bob");
    await joinAs(ada, "ada");
    await joinAs(bob, "bob");

    const expected = []; // { from, text } in the order sent
    const turn = async (i, from) => {
      const text = LINES[i - 1];
      expected.push({ from, text });
      await say(from === "ada" ? ada : bob, text);
    };

    for (let i = 1; i <= 10; i++) await turn(i, i % 2 ? "ada" : "bob");

    // Drain ada's relay mid-conversation: bob goes on talking while her page reconnects.
    const drained = relays[0].drain();
    drained.catch(() => {}); // awaited below; a failure before that must not be reported twice
    for (let i = 11; i <= 14; i++) await turn(i, "bob");
    await waitIn(ada, () => window.__chat.reconnectLines.length > 0, "ada's page shows the reconnect");
    for (let i = 15; i <= 18; i++) await turn(i, "bob");
    await waitIn(ada, (u) => window.__chat.states.at(-1) === "connected" && window.__chat.urls.at(-1) === u,
                 "ada reconnected to the other relay", relays[1].wsUrl);
    await waitIn(ada, (room) => window.__chat.subscribed[room] >= 2, "ada resubscribed", ROOM);
    await drained; // exit code 0 after the drain

    for (let i = 19; i <= 30; i++) await turn(i, i % 2 ? "ada" : "bob");

    for (const page of [ada, bob]) {
      await waitIn(page, (room, n) => window.__chat.delivered[room].filter((m) => !m.data.system).length >= n &&
                                      document.querySelectorAll("#messages li:not(.system)").length >= n,
                   "all messages delivered", ROOM, expected.length);
    }
    mkdirSync(OUTPUT, { recursive: true });
    await ada.screenshot({ path: join(OUTPUT, "chat-demo.png") });

    const adaState = await chatState(ada);
    const bobState = await chatState(bob);
    const adaTexts = checkExactlyOnce(adaState, expected, "ada");
    const bobTexts = checkExactlyOnce(bobState, expected, "bob");
    assert.deepEqual(adaTexts, bobTexts, "both pages saw the same order");

    // ada: connected, lost relay 0, showed "reconnecting in N s", came back on relay 1 and recovered.
    assert.match(adaState.reconnectLines[0], /^reconnecting (in \d+\.\d s|…)$/);
    assert.deepEqual(adaState.urls.slice(0, 2), [relays[0].wsUrl, relays[1].wsUrl]);
    assert.equal(adaState.states[0], "connecting");
    assert.equal(adaState.states.at(-1), "connected");
    assert.ok(adaState.states.includes("disconnected") || adaState.states.filter((s) => s === "connecting").length >= 2,
              `ada's states: ${adaState.states}`);
    assert.ok(adaState.recovered[ROOM] >= 1, "ada's resubscribe recovered what she missed");
    assert.equal(adaState.reconnectVisible, false);
    // bob's relay stayed: one connection all along.
    assert.deepEqual(bobState.states, ["connecting", "connected"]);
    assert.deepEqual(bobState.urls, [relays[1].wsUrl]);
    assert.deepEqual(pageLogs.filter((l) => / pageerror: /.test(l)), []);
  } catch (e) {
    console.error(logs());
    console.error(pageLogs.join("\n"));
    throw e;
  }
});
