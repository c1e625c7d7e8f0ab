#!/usr/bin/env node
// A chat backend for wsrelay's HTTP hook (docs/hook.md): Node 18+, node:http and node:crypto only.
//
//     HOOK_SECRET=change-me node server.js [PORT]     (or PORT=...; default 3000, 0 = any free port)
//
// Prints `listening <port>`, then `<event> <connection> <ok|denied|badsig>` per hook request.
// GET /stats answers {"connects","disconnects","messages"} (add ?user=NAME for one user). It is
// unauthenticated: it exists for the tests; do not expose it in a real app.
// docs/examples/hook-python/server.py is the same app in Python; docs/examples/README.md explains both.
//
// DEMO=1 also serves the chat demo of docs/examples/chat/ (page, tokens, join/leave notices): see
// docs/examples/chat/demo.js for its environment. The hook answers are the same with or without it.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");

const SECRET = process.env.HOOK_SECRET || "";
const MAX_SKEW_S = 300; // a captured request can be replayed only within this window
const MAX_BODY = 1 << 20;

// Node runs one handler at a time, so plain objects need no locking.
const connections = new Map(); // connection id -> {user, seq, lastN, connectAnswer}
const totals = { connects: 0, disconnects: 0, messages: 0 };
const perUser = new Map(); // user -> the same three counters
const counters = { guest: 0 };

const say = (line) => process.stdout.write(line + "\n"); // synchronous on pipes and files
const obj = (v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v : {});
const error = (code, message) => ({ error: { code, message } });

function count(user, field) {
  totals[field] += 1;
  const key = user || "-";
  if (!perUser.has(key)) perUser.set(key, { connects: 0, disconnects: 0, messages: 0 });
  perUser.get(key)[field] += 1;
}

function signatureOk(header, body) {
  const parts = {};
  for (const p of header.split(",")) {
    const eq = p.indexOf("=");
    if (eq > 0) parts[p.slice(0, eq).trim()] = p.slice(eq + 1);
  }
  const t = parts.t;
  if (!/^[0-9]+$/.test(t || "") || parts.v1 === undefined) return false;
  if (Math.abs(Date.now() / 1000 - Number(t)) > MAX_SKEW_S) return false;
  // Sign exactly what arrived (t + raw bytes): re-encoding parsed JSON would not match.
  const expected = Buffer.from(
    crypto.createHmac("sha256", SECRET).update(t + ".").update(body).digest("hex"));
  const given = Buffer.from(parts.v1);
  // Constant time, so a forger learns nothing byte by byte (the length is public anyway).
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

function onConnect(ev) {
  let user = ev.user ?? null;
  const headers = obj(ev.headers);
  const client = `${headers["x-forwarded-for"] ?? ""} ${headers["user-agent"] ?? ""}`;
  if (user === "banned" || client.includes("banned-agent")) {
    return { deny: { code: 403, message: "banned" } };
  }
  const known = connections.get(ev.connection);
  // The relay retries connect after a timeout or a 5xx: answer the retry the same way.
  if (known && known.connectAnswer) return known.connectAnswer;
  const answer = {};
  if (user === null) { // no JWT (auth off): the app names the user, the relay remembers it
    counters.guest += 1;
    user = answer.user = `guest-${counters.guest}`;
  }
  answer.subscribe = ["lobby"];
  answer.meta = { joined_at: Date.now(), name: user };
  connections.set(ev.connection, { user, seq: 0, lastN: 0, connectAnswer: answer });
  count(user, "connects");
  return answer;
}

function onSubscribe(ev) {
  const channel = ev.channel || "";
  const user = ev.user ?? null;
  if (channel.startsWith("private:") && (user === null || channel !== `private:${user}`)) {
    return { deny: { code: 403, message: "private channel" } };
  }
  return {};
}

async function onMessage(ev) {
  if (!connections.has(ev.connection)) {
    connections.set(ev.connection, { user: ev.user ?? null, seq: 0, lastN: 0, connectAnswer: null });
  }
  const state = connections.get(ev.connection);
  count(ev.user, "messages");
  // The relay promises one connection's events in order; tests number them to check it.
  const n = obj(ev.data).n;
  if (Number.isInteger(n)) {
    if (n !== state.lastN + 1) say(`order-violation ${ev.connection} ${state.lastN + 1} ${n}`);
    state.lastN = n;
  }
  if (ev.rpc) return onRpc(ev, obj(ev.data));
  if (ev.channel) return onChat(ev, ev.data, state);
  return error(400, "message without channel or rpc");
}

async function onChat(ev, data, state) {
  const text = obj(data).text;
  if (typeof text !== "string") return error(400, 'data must be {"text": string}');
  if (text === "") return error(400, "empty message");
  if (text === "crash") return [500, error(500, "crashed on purpose")];
  if (text === "slow") { // the relay's hook.timeout_ms decides what the client sees
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  const meta = obj(ev.meta);
  if (text.startsWith("/nick ")) {
    const name = text.slice(6).replace(/^ +| +$/g, "");
    if (!name) return error(400, "empty nick");
    // meta replaces the connection's metadata: send all of it back, not just the change.
    return { meta: { ...meta, name }, reply: { ok: true } };
  }
  state.seq += 1;
  // The hook decides what is published: the client cannot spoof "from".
  const from = meta.name || ev.user || null;
  return { publish: [{ channel: ev.channel, data: { from, text, seq: state.seq } }] };
}

function onRpc(ev, data) {
  switch (data.cmd) {
    case "whoami": return { reply: { user: ev.user ?? null, meta: ev.meta ?? null } };
    case "echo": return { reply: data.value ?? null }; // undefined would drop the key
    case "kick": // the reply is delivered before the close
      return { reply: { bye: true }, disconnect: { code: 4000, reason: "kicked" } };
    default: return error(404, "unknown command");
  }
}

function onDisconnect(ev) {
  const state = connections.get(ev.connection);
  connections.delete(ev.connection);
  // Only connections whose connect we counted, once: a retried disconnect finds nothing.
  if (state && state.connectAnswer) count(state.user, "disconnects");
  return [204, null];
}

const HANDLERS = { connect: onConnect, subscribe: onSubscribe, message: onMessage, disconnect: onDisconnect };

function send(res, status, answer) {
  if (answer === null) return res.writeHead(status).end(); // 204 has no body and must not announce one
  const body = JSON.stringify(answer);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

async function onHook(req, res, body) {
  let event = req.headers["x-wsrelay-event"] || "-";
  if (!signatureOk(req.headers["x-wsrelay-signature"] || "", body)) {
    send(res, 401, error(401, "bad signature"));
    return say(`${event} - badsig`);
  }
  let conn = "-";
  let result;
  try {
    const ev = JSON.parse(body);
    event = ev.event;
    conn = ev.connection;
    if (typeof conn !== "string") throw new Error("no connection");
    result = Object.hasOwn(HANDLERS, event) ? await HANDLERS[event](ev) : error(400, "unknown event");
  } catch { // malformed input must cost one 400, never the server
    conn = "-";
    result = error(400, "bad request");
  }
  const [status, answer] = Array.isArray(result) ? result : [200, result];
  send(res, status, answer);
  say(`${event} ${conn} ${answer && answer.deny ? "denied" : "ok"}`);
}

function onStats(req, res) {
  const user = new URL(req.url, "http://localhost").searchParams.get("user");
  const stats = user === null ? totals : perUser.get(user) || { connects: 0, disconnects: 0, messages: 0 };
  send(res, 200, stats);
}

if (!SECRET) {
  console.error("HOOK_SECRET is not set: refusing to accept unsigned hook requests");
  process.exit(1);
}
// The demo's requests (GET /, /config, POST /token, ...) are answered before the hook's.
let demo = null;
if (process.env.DEMO === "1") {
  try {
    demo = require("../chat/demo.js").createDemo();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
const server = http.createServer((req, res) => {
  if (demo && demo(req, res)) return;
  if (req.method === "GET" && new URL(req.url, "http://localhost").pathname === "/stats") {
    return onStats(req, res);
  }
  if (req.method !== "POST") return send(res, 404, error(404, "not found"));
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) return send(res, 413, error(413, "body too large"));
    onHook(req, res, Buffer.concat(chunks));
  });
});
// Outlive the relay's idle pooled connections, so the app never closes one as it is reused.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000; // kept above keepAliveTimeout so it never cuts an idle connection short
server.listen(Number(process.argv[2] ?? process.env.PORT ?? 3000), "127.0.0.1", () => {
  say(`listening ${server.address().port}`);
});
