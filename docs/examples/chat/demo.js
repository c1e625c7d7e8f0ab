// The chat demo's half of the Node example app (docs/examples/hook-node/server.js with DEMO=1):
// everything a page needs besides the hook, which server.js answers exactly as without the demo.
//
//   GET  /                      the chat page (index.html, app.js, style.css of this folder)
//   GET  /wsrelay-client.min.js the built client (clients/js/dist; CLIENT_JS names another file)
//   GET  /config                {"relays":[ws URLs], "rooms":[channels]}: what the page connects to
//   POST /token {"user":NAME}   {"token":JWT,"exp":S}: HS256 with JWT_SECRET, sub=NAME, chat:* only.
//                               A real app issues tokens after its own login; this demo trusts the name.
//   POST /join, POST /leave     {"token":JWT}: "NAME joined" / "NAME left" in chat:lobby, published
//                               through the relay's HTTP API, as any backend publishes
//
// Environment: JWT_SECRET (the relay's auth.jwt.secret), RELAY_URLS (comma-separated ws:// URLs),
// RELAY_API_URL (comma-separated http:// base URLs, tried in order) and RELAY_API_KEY (api.key),
// TOKEN_TTL_S (default 900).
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const crypto = require("node:crypto");

const ROOMS = ["chat:lobby", "chat:random"];
const USER_NAME = /^[A-Za-z0-9_-]{1,32}$/; // also a valid channel-name fragment
const STATIC = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
};

const list = (s) => (s || "").split(",").map((x) => x.trim()).filter(Boolean);
const b64url = (v) => Buffer.from(v).toString("base64url");

function createDemo(env = process.env) {
  const secret = env.JWT_SECRET || "";
  const relays = list(env.RELAY_URLS);
  const apiUrls = list(env.RELAY_API_URL);
  const apiKey = env.RELAY_API_KEY || "";
  const ttl = Number(env.TOKEN_TTL_S || 900);
  const clientJs = env.CLIENT_JS ||
    path.join(__dirname, "..", "..", "..", "clients", "js", "dist", "wsrelay-client.min.js");
  const missing = [["JWT_SECRET", secret], ["RELAY_URLS", relays.length], ["RELAY_API_URL", apiUrls.length],
                   ["RELAY_API_KEY", apiKey]].filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) throw new Error(`DEMO=1 needs ${missing.join(", ")}`);
  if (!(ttl >= 10)) throw new Error("TOKEN_TTL_S must be at least 10");

  function sign(claims) {
    const unsigned = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
    return `${unsigned}.${crypto.createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
  }

  // The user of a token this app issued and that has not expired, else null.
  function verify(token) {
    const parts = typeof token === "string" ? token.split(".") : [];
    if (parts.length !== 3) return null;
    const expected = Buffer.from(
      crypto.createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest("base64url"));
    const given = Buffer.from(parts[2]);
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
    try {
      const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
      return claims.exp > Date.now() / 1000 && USER_NAME.test(claims.sub) ? claims.sub : null;
    } catch {
      return null;
    }
  }

  // POST /api/publish to the first relay that takes it: with Redis any relay reaches every client.
  async function publish(channel, data) {
    const body = JSON.stringify({ channel, data });
    for (const base of apiUrls) {
      const status = await new Promise((resolve) => {
        const req = http.request(new URL("/api/publish", base), {
          method: "POST", timeout: 5000,
          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), "X-API-Key": apiKey },
        }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", (e) => resolve(e.message));
        req.end(body);
      });
      if (status === 200) return true;
      console.error(`demo: publish to ${base}: ${status}`); // stderr: stdout is the hook's log
    }
    return false;
  }

  function answer(res, status, value, type = "application/json") {
    const body = typeof value === "string" || Buffer.isBuffer(value) ? value : JSON.stringify(value);
    res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
    res.end(body);
  }

  function readJson(req, limit = 8192) {
    return new Promise((resolve) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c) => { body += c; if (body.length > limit) req.destroy(); });
      req.on("end", () => { try { resolve(JSON.parse(body)); } catch { resolve(null); } });
      req.on("error", () => resolve(null));
    });
  }

  async function onPost(pathname, req, res) {
    const body = (await readJson(req)) || {};
    if (pathname === "/token") {
      if (!USER_NAME.test(body.user)) return answer(res, 400, { error: "a name of 1-32 letters, digits, _ or -" });
      const exp = Math.floor(Date.now() / 1000) + ttl;
      // The relay enforces these claims; the hook (server.js) still sees and may refuse each step.
      const token = sign({ sub: body.user, exp, channels: ["chat:*"], publish: ["chat:*"] });
      return answer(res, 200, { token, exp });
    }
    const user = verify(body.token);
    if (!user) return answer(res, 401, { error: "bad token" });
    const text = `${user} ${pathname === "/join" ? "joined" : "left"}`;
    const ok = await publish("chat:lobby", { system: true, text });
    return answer(res, ok ? 200 : 503, ok ? { ok: true } : { error: "no relay took the message" });
  }

  // Answers the demo's requests and returns true; false leaves the request to the hook.
  return function handle(req, res) {
    const { pathname } = new URL(req.url, "http://localhost");
    if (req.method === "GET" && Object.hasOwn(STATIC, pathname)) {
      const [file, type] = STATIC[pathname];
      fs.readFile(path.join(__dirname, file), (err, data) => (err ? answer(res, 500, { error: err.message })
                                                                  : answer(res, 200, data, type)));
      return true;
    }
    if (req.method === "GET" && pathname === "/wsrelay-client.min.js") {
      fs.readFile(clientJs, (err, data) => (err
        ? answer(res, 404, "the client is not built: cd clients/js && npm ci && npm run build\n", "text/plain")
        : answer(res, 200, data, "text/javascript; charset=utf-8")));
      return true;
    }
    if (req.method === "GET" && pathname === "/config") {
      answer(res, 200, { relays, rooms: ROOMS });
      return true;
    }
    if (req.method === "POST" && ["/token", "/join", "/leave"].includes(pathname)) {
      onPost(pathname, req, res);
      return true;
    }
    return false;
  };
}

module.exports = { createDemo };
