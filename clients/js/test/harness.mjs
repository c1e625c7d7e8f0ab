// Real processes for the integration and browser tests: redis-server, wsrelay, the Node hook
// example app. Everything binds 127.0.0.1, every wait has a deadline, every process is ended by
// its PID (child.kill) in cleanup(), and every process's output is kept for the failure report.
//
// Exports (all timeouts in ms):
//   HOST, ROOT (the repository), RELAY_BIN (env WSRELAY_BIN), HOOK_APP (the example app's path)
//   skipReason()                      a string when WSRELAY_BIN or /usr/bin/redis-server is missing,
//                                     else undefined: describe(name, { skip: skipReason() }, ...)
//   startRedis({ args })              -> Redis { port, url, pid, log(), command(...args), stop(), kill() }
//   startRelay(config, { readyTimeoutMs, env })
//                                     -> Relay { port, wsUrl, httpUrl, pid, configPath, log(),
//                                        waitForLog(needle, timeoutMs), exited, drain(timeoutMs),
//                                        stop(timeoutMs), kill() }
//       config: the relay's configuration as an object; nested ({auth: {enabled: true}}) and dotted
//       ({"auth.enabled": true}) keys mix. Defaults first (workers 2, drain.window_ms 200,
//       log.level info), then config; listen.host/port are the harness's. Written as JSON (which
//       is YAML) to a temporary file and passed as --config; the environment has no WSRELAY_*.
//       Ready when stderr shows `wsrelay ready: listening on 127.0.0.1:<port>`.
//       drain(): SIGTERM, then waits for the exit and fails unless its code is 0 (a drained relay
//       sends {"op":"reconnect"} and closes 1001 over drain.window_ms first).
//   startHookApp({ secret, env, args }) -> App { port, url, pid, log(), waitForLine(needle, timeoutMs),
//                                        stop(timeoutMs) }: docs/examples/hook-node/server.js with
//                                        HOOK_SECRET=secret (plus env: DEMO=1 ... for the demo mode);
//                                        ready at its `listening <port>` line.
//   signJwt(claims, secret)           an HS256 JWT (node:crypto); nowS() is the current Unix time in s
//   httpRequest(method, url, { headers, body, timeoutMs })
//                                     -> { status, headers, text, json } (body: a string, or JSON-encoded)
//   once(emitter, event, { timeoutMs, filter, what })
//                                     resolves with the first event's first argument (its arguments as
//                                     an array when there are several) that passes filter; works with
//                                     on/off (wsrelay-client, ws) and EventEmitters; rejects at the deadline
//   deadline(promise, timeoutMs, what) the promise, or a rejection naming `what` at the deadline
//   waitUntil(check, { timeoutMs, intervalMs, what })
//                                     polls check() (sync or async) until truthy and returns that, for state
//                                     that has no event; bounded, never a fixed sleep
//   logs()                            the output of every process started so far, labelled
//   withLogs(fn)                      runs async fn; when it throws, prints logs() and rethrows
//   cleanup()                         ends every process still running (SIGTERM, SIGKILL after 10 s),
//                                     by PID, and removes the temporary files; call it in after()
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const HOST = "127.0.0.1";
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const RELAY_BIN = process.env.WSRELAY_BIN || undefined;
export const HOOK_APP = join(ROOT, "docs", "examples", "hook-node", "server.js");
const REDIS_SERVER = "/usr/bin/redis-server";
const READY_TIMEOUT_MS = 20000; // generous: a busy 2-core box starts a sanitized relay slowly
const STOP_TIMEOUT_MS = 15000;
const KILL_AFTER_MS = 10000;

const RELAY_DEFAULTS = { workers: 2, "drain.window_ms": 200, "log.level": "info" };

const started = []; // every Proc, in start order: cleanup() and logs() go through it
const tempDirs = [];

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function skipReason() {
  if (!RELAY_BIN) return "WSRELAY_BIN is not set (run through ctest or scripts/ctest.sh)";
  if (!executable(RELAY_BIN)) return `WSRELAY_BIN=${RELAY_BIN} is not an executable`;
  if (!executable(REDIS_SERVER)) return `${REDIS_SERVER} is not installed`;
  return undefined;
}

export const nowS = () => Math.floor(Date.now() / 1000);

// ---- waiting ----

export function deadline(promise, timeoutMs, what = "operation") {
  let timer;
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

export function once(emitter, event, { timeoutMs = 10000, filter = () => true, what } = {}) {
  const off = (emitter.off ?? emitter.removeListener).bind(emitter);
  let listener;
  const got = new Promise((resolve) => {
    listener = (...args) => {
      const value = args.length > 1 ? args : args[0];
      let ok = false;
      try {
        ok = filter(value);
      } catch {
        ok = false;
      }
      if (ok) resolve(value);
    };
    emitter.on(event, listener);
  });
  return deadline(got, timeoutMs, what ?? `event "${event}"`).finally(() => off(event, listener));
}

export async function waitUntil(check, { timeoutMs = 10000, intervalMs = 25, what = "condition" } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > end) throw new Error(`${what}: not met within ${timeoutMs} ms (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs)); // a bounded poll interval, not a synchronisation
  }
}

// ---- processes ----

function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("WSRELAY_")) env[k] = v;
  return { ...env, ...extra };
}

// A child process whose output is kept as lines, with waiters for a line.
class Proc {
  constructor(label, command, args, { env, cwd } = {}) {
    this.label = label;
    this.lines = [];
    this.waiters = new Set();
    this.child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    this.pid = this.child.pid;
    this.exitCode = undefined; // set on exit: a number, or the signal's name
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exitCode = code ?? signal;
        this.notify();
        resolve(this.exitCode);
      });
      this.child.on("error", (e) => {
        this.lines.push(`[spawn error] ${e.message}`);
        this.exitCode = this.exitCode ?? "spawn-error";
        this.notify();
        resolve(this.exitCode);
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop();
        for (const line of parts) this.lines.push(line);
        if (parts.length) this.notify();
      });
      stream.on("end", () => {
        if (partial) this.lines.push(partial);
        partial = "";
        this.notify();
      });
    }
    started.push(this);
  }

  get running() {
    return this.exitCode === undefined;
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  log() {
    return this.lines.join("\n");
  }

  // Resolves with the first line (from the start of the output) that contains needle (a string) or
  // matches it (a RegExp); rejects at the deadline or when the process exits without it.
  waitForLine(needle, timeoutMs = 10000) {
    const matches = (line) => (typeof needle === "string" ? line.includes(needle) : needle.test(line));
    return new Promise((resolve, reject) => {
      let seen = 0;
      let timer;
      const finish = (fn, value) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn(value);
      };
      const check = () => {
        for (; seen < this.lines.length; seen++) {
          if (matches(this.lines[seen])) return finish(resolve, this.lines[seen]);
        }
        if (!this.running) {
          finish(reject, new Error(`${this.label} exited (${this.exitCode}) without a line matching ` +
                                   `${needle}\n${this.log()}`));
        }
      };
      timer = setTimeout(() => finish(reject, new Error(
        `${this.label}: no line matching ${needle} within ${timeoutMs} ms\n${this.log()}`)), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  signal(sig) {
    if (this.running) this.child.kill(sig);
  }

  // SIGTERM (or sig), SIGKILL after killAfterMs; resolves with the exit code or signal name.
  async stop({ sig = "SIGTERM", killAfterMs = KILL_AFTER_MS } = {}) {
    if (!this.running) return this.exitCode;
    this.child.kill(sig);
    const timer = setTimeout(() => this.signal("SIGKILL"), killAfterMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill() {
    return this.stop({ sig: "SIGKILL" });
  }
}

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

const handedOut = new Set(); // ports this process gave out already: never twice

// A port the kernel just reported free. Node cannot hold it with SO_REUSEPORT the way the Python
// harness does, so the caller retries when the server reports it in use.
export async function freePort() {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.on("error", reject);
      s.listen(0, HOST, () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port");
}

const inUse = (text) => /in use/i.test(text);

// ---- redis-server ----

function encodeResp(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return out;
}

// One RESP reply from buf at pos: [value, nextPos], or undefined when incomplete.
function parseResp(buf, pos = 0) {
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return undefined;
  const kind = buf[pos];
  const rest = buf.slice(pos + 1, eol);
  const next = eol + 2;
  if (kind === "+") return [rest, next];
  if (kind === "-") return [new Error(rest), next];
  if (kind === ":") return [Number(rest), next];
  if (kind === "$") {
    const n = Number(rest);
    if (n < 0) return [null, next];
    if (Buffer.byteLength(buf.slice(next)) < n + 2) return undefined;
    const body = Buffer.from(buf.slice(next)).subarray(0, n).toString();
    return [body, next + body.length + 2];
  }
  if (kind === "*") {
    const n = Number(rest);
    if (n < 0) return [null, next];
    const items = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parseResp(buf, p);
      if (!r) return undefined;
      items.push(r[0]);
      p = r[1];
    }
    return [items, p];
  }
  throw new Error(`unexpected RESP reply ${JSON.stringify(buf.slice(pos, eol))}`);
}

// Sends one command and resolves with its reply (an error reply rejects). ASCII replies only.
export function redisCommand(port, args, timeoutMs = 5000) {
  return deadline(new Promise((resolve, reject) => {
    const sock = net.connect(port, HOST);
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", reject);
    sock.on("connect", () => sock.write(encodeResp(args)));
    sock.on("data", (chunk) => {
      buf += chunk;
      let r;
      try {
        r = parseResp(buf);
      } catch (e) {
        sock.destroy();
        return reject(e);
      }
      if (!r) return;
      sock.destroy();
      if (r[0] instanceof Error) reject(r[0]);
      else resolve(r[0]);
    });
    sock.on("close", () => reject(new Error("redis closed the connection")));
  }), timeoutMs, `redis ${args[0]}`);
}

export async function startRedis({ args = [], readyTimeoutMs = READY_TIMEOUT_MS } = {}) {
  let lastError;
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const dir = tempDir("wsrelay-js-redis-");
    const proc = new Proc(`redis-server :${port}`, REDIS_SERVER,
      ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", dir,
       "--logfile", "", ...args], { env: cleanEnv() });
    try {
      await proc.waitForLine("Ready to accept connections", readyTimeoutMs);
      await redisCommand(port, ["PING"]);
    } catch (e) {
      lastError = e;
      await proc.kill();
      if (inUse(proc.log())) continue;
      throw e;
    }
    return {
      port,
      url: `redis://${HOST}:${port}/0`,
      pid: proc.pid,
      proc,
      log: () => proc.log(),
      command: (...cmd) => redisCommand(port, cmd),
      stop: () => proc.stop(),
      kill: () => proc.kill(),
    };
  }
  throw lastError;
}

// ---- wsrelay ----

function isPlainObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// Deep-merges src into dst; a dotted key ("auth.jwt.secret") names a nested one.
function mergeConfig(dst, src) {
  for (const [key, value] of Object.entries(src)) {
    const parts = key.split(".");
    let node = dst;
    for (const p of parts.slice(0, -1)) {
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p];
    }
    const last = parts[parts.length - 1];
    if (isPlainObject(value)) {
      if (!isPlainObject(node[last])) node[last] = {};
      mergeConfig(node[last], value);
    } else {
      node[last] = value;
    }
  }
  return dst;
}

export async function startRelay(config = {}, { readyTimeoutMs = READY_TIMEOUT_MS, env = {} } = {}) {
  const reason = skipReason();
  if (reason) throw new Error(reason);
  let lastError;
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const dir = tempDir("wsrelay-js-relay-");
    const full = mergeConfig(mergeConfig({}, RELAY_DEFAULTS), config);
    mergeConfig(full, { listen: { host: HOST, port } });
    const configPath = join(dir, "wsrelay.yaml");
    writeFileSync(configPath, JSON.stringify(full, null, 2));
    const proc = new Proc(`wsrelay :${port}`, RELAY_BIN, ["--config", configPath], { env: cleanEnv(env) });
    try {
      await proc.waitForLine(`wsrelay ready: listening on ${HOST}:${port}`, readyTimeoutMs);
    } catch (e) {
      lastError = e;
      await proc.kill();
      if (inUse(proc.log())) continue;
      throw e;
    }
    return new Relay(proc, port, configPath, full);
  }
  throw lastError;
}

class Relay {
  constructor(proc, port, configPath, config) {
    this.proc = proc;
    this.pid = proc.pid;
    this.port = port;
    this.configPath = configPath;
    this.config = config;
    this.wsUrl = `ws://${HOST}:${port}/ws`;
    this.httpUrl = `http://${HOST}:${port}`;
    this.exited = proc.exited;
  }

  get running() {
    return this.proc.running;
  }

  log() {
    return this.proc.log();
  }

  waitForLog(needle, timeoutMs = 10000) {
    return this.proc.waitForLine(needle, timeoutMs);
  }

  // SIGTERM: the relay drains (reconnect frames and 1001 closes over drain.window_ms) and exits.
  // Resolves once it has exited with 0; rejects (with its log) on another code or at the deadline.
  async drain(timeoutMs = STOP_TIMEOUT_MS + (this.config.drain?.window_ms ?? 0)) {
    this.proc.signal("SIGTERM");
    const code = await deadline(this.proc.exited, timeoutMs, `wsrelay :${this.port} exit after SIGTERM`)
      .catch(async (e) => {
        await this.proc.kill();
        throw new Error(`${e.message}\n${this.log()}`);
      });
    if (code !== 0) throw new Error(`wsrelay :${this.port} exited with ${code}\n${this.log()}`);
    return code;
  }

  stop(timeoutMs = STOP_TIMEOUT_MS) {
    return this.proc.stop({ killAfterMs: timeoutMs });
  }

  kill() {
    return this.proc.kill();
  }
}

// ---- the hook example app ----

export async function startHookApp({ secret = "harness-hook-secret", env = {}, args = ["0"],
                                     readyTimeoutMs = READY_TIMEOUT_MS } = {}) {
  const proc = new Proc("hook app", process.execPath, [HOOK_APP, ...args],
    { env: cleanEnv({ ...env, HOOK_SECRET: secret }) });
  let line;
  try {
    line = await proc.waitForLine(/^listening \d+$/, readyTimeoutMs);
  } catch (e) {
    await proc.kill();
    throw e;
  }
  const port = Number(line.split(" ")[1]);
  proc.label = `hook app :${port}`;
  return {
    port,
    url: `http://${HOST}:${port}`,
    secret,
    pid: proc.pid,
    proc,
    log: () => proc.log(),
    waitForLine: (needle, timeoutMs) => proc.waitForLine(needle, timeoutMs),
    stop: (timeoutMs = STOP_TIMEOUT_MS) => proc.stop({ killAfterMs: timeoutMs }),
  };
}

// ---- JWT, HTTP ----

const b64url = (buf) => Buffer.from(buf).toString("base64url");

export function signJwt(claims, secret) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

export function httpRequest(method, url, { headers = {}, body, timeoutMs = 10000 } = {}) {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const hdrs = { ...headers };
  if (payload !== undefined) {
    hdrs["Content-Type"] ??= "application/json";
    hdrs["Content-Length"] = Buffer.byteLength(payload);
  }
  return deadline(new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: hdrs, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(payload);
  }), timeoutMs, `${method} ${url}`);
}

// ---- logs, cleanup ----

export function logs() {
  return started.map((p) => `----- ${p.label} (pid ${p.pid}, ` +
    `${p.running ? "running" : `exited ${p.exitCode}`}) -----\n${p.log()}`).join("\n");
}

export async function withLogs(fn) {
  try {
    return await fn();
  } catch (e) {
    console.error(logs());
    throw e;
  }
}

export async function cleanup() {
  const running = started.filter((p) => p.running);
  await Promise.all(running.map((p) => p.stop()));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

// A test file that dies without reaching cleanup() still leaves no process behind.
process.on("exit", () => {
  for (const p of started) if (p.running) p.child.kill("SIGKILL");
});
