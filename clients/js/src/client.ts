import { Emitter } from "./emitter.js";
import { ClientError, RequestError } from "./errors.js";
import { backoffDelay, closeAction } from "./policy.js";
import { Position, Subscription, SubscriptionHost } from "./subscription.js";

export type ClientState = "disconnected" | "connecting" | "connected" | "closed";

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: any): void;
  now(): number;
}

export interface ClientOptions {
  /** A JWT, offered as the subprotocol `wsrelay.bearer.<token>`. */
  token?: string;
  /** Asked before every connection attempt, and on token_expiring (then sent as a refresh). */
  getToken?: () => string | Promise<string>;
  /** The WebSocket constructor; default globalThis.WebSocket. In Node before 22: the `ws` package. */
  WebSocket?: any;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  reconnectFactor?: number;
  /** A connection up this long resets the backoff. */
  stableAfterMs?: number;
  /** After {"op":"reconnect"} or a 1000/1001 close: reconnect after a random 0..this. */
  drainReconnectMaxMs?: number;
  /** Timeout of publish, send, history and ping. */
  requestTimeoutMs?: number;
  /** Nothing received this long: send {"op":"ping"}. 0 turns the check off. */
  pingIntervalMs?: number;
  /** Nothing received this long after that ping: close (4000 "no pong") and reconnect. */
  pongTimeoutMs?: number;
  /** For tests: default Math.random. */
  random?: () => number;
  /** For tests: default the global timers and Date.now. */
  clock?: Clock;
}

export interface ClientEvents {
  state: (state: ClientState, previous: ClientState) => void;
  connected: (e: { url: string }) => void;
  /** Every socket that closes, also an attempt that never opened (`code` 1006 then). */
  disconnected: (e: { code: number; reason: string; reconnect: boolean; delayMs?: number }) => void;
  reconnecting: (e: { attempt: number; delayMs: number }) => void;
  closed: (e: { code: number; reason: string }) => void;
  error: (e: ClientError) => void;
  subscribed: (s: Subscription) => void;
  token_expiring: (e: { exp: number; inMs: number }) => void;
}

export type Url = string | (() => string | Promise<string>);

/** A request waiting for its answer (or, while connecting, for the connection). */
interface Request {
  cmd: object;
  ok(frame: any): void;
  no(e: RequestError): void;
  timer?: unknown;
  id?: number;
}

const DEFAULTS = {
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 30000,
  reconnectFactor: 2,
  stableAfterMs: 10000,
  drainReconnectMaxMs: 2000,
  requestTimeoutMs: 10000,
  pingIntervalMs: 25000,
  pongTimeoutMs: 10000,
  random: Math.random,
};

const noop = () => {};

export class Client extends Emitter<ClientEvents> {
  private st: ClientState = "disconnected";
  private o: typeof DEFAULTS & ClientOptions;
  private c: Clock;
  private WS: any;
  private h: SubscriptionHost;
  private ws: any = null; // the current socket; events of older ones are ignored
  private gen = 0; // bumped by every attempt and by disconnect(): an older attempt's async steps stop
  private lastId = 0;
  private pending = new Map<number, Request>();
  private queue: Request[] = []; // requests made while connecting
  private subs = new Map<string, Subscription>();
  private attempt = 0; // reconnects since the last stable connection
  private draining = false; // {"op":"reconnect"} came: the close that follows is a drain
  private offline = false;
  private reporting = false;
  private token: string | undefined;
  private retryTimer: unknown;
  private stableTimer: unknown;
  private liveTimer: unknown;

  constructor(private url: Url, options: ClientOptions = {}) {
    super();
    const o: any = (this.o = { ...DEFAULTS });
    // An option given as undefined keeps its default ({ minReconnectDelayMs: config.min } with no config.min).
    for (const k in options) if ((options as any)[k] !== undefined) o[k] = (options as any)[k];
    this.token = o.token;
    this.c = o.clock || {
      // Wrapped: browsers refuse setTimeout called as a method of another object.
      setTimeout: (f, ms) => setTimeout(f, ms),
      clearTimeout: (t) => clearTimeout(t),
      now: () => Date.now(),
    };
    this.WS = o.WebSocket || (globalThis as any).WebSocket;
    if (!this.WS) throw new Error("wsrelay-client: no WebSocket here: pass options.WebSocket (in Node, the ws package)");
    this.oops = (e) => this.report("listener", "an event listener threw", e);
    this.h = {
      leave: (s, tell) => {
        if (this.subs.get(s.channel) !== s) return;
        this.subs.delete(s.channel);
        if (tell && this.st === "connected") this.write({ op: "unsubscribe", channel: s.channel, id: ++this.lastId });
      },
      retry: (s, n) => this.c.setTimeout(() => this.st === "connected" && this.subscribeNow(s), this.backoff(n)) as any,
      clear: (t) => this.c.clearTimeout(t),
      oops: this.oops,
    };
  }

  get state(): ClientState {
    return this.st;
  }

  /** Starts connecting (from "disconnected"; otherwise does nothing). */
  connect(): void {
    if (this.st !== "disconnected") return;
    this.listen("addEventListener");
    this.setState("connecting");
    this.open();
  }

  /** Closes with 1000 and does not reconnect. Subscriptions stay; connect() restores them. */
  disconnect(): void {
    if (this.st === "disconnected" || this.st === "closed") return;
    const had = this.ws;
    this.gen++;
    this.c.clearTimeout(this.retryTimer);
    this.listen("removeEventListener");
    this.detach(true);
    this.failQueue("disconnected");
    this.setState("disconnected");
    if (had) this.emit("disconnected", { code: 1000, reason: "disconnect()", reconnect: false });
  }

  /** Subscribes to a channel, now or on the next connection. `since`: resume after this position. */
  subscribe(channel: string, options: { since?: Position } = {}): Subscription {
    if (this.subs.has(channel)) throw new Error("wsrelay-client: already subscribed to " + channel);
    const s = new Subscription(channel, this.h, options.since);
    this.subs.set(channel, s);
    if (this.st === "connected") this.subscribeNow(s);
    return s;
  }

  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  /** Resolves on the relay's ack (or the app's reply, when the hook routes publishes). */
  publish(channel: string, data: unknown, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.request({ op: "publish", channel, data }, options.timeoutMs).then(noop);
  }

  /** An RPC to the app through the hook: resolves with the app's reply data (undefined on an ack). */
  send(data: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    return this.request({ op: "send", data }, options.timeoutMs).then((f) => f.data);
  }

  history(
    channel: string,
    options: { limit?: number; since?: Position; timeoutMs?: number } = {},
  ): Promise<{ messages: { offset: number; data: unknown }[]; offset: number; epoch: string }> {
    const { limit, since } = options;
    return this.request({ op: "history", channel, limit, since }, options.timeoutMs).then((f) => ({
      messages: f.messages || [],
      offset: f.offset,
      epoch: f.epoch,
    }));
  }

  /** Resolves with the round trip in ms. */
  ping(options: { timeoutMs?: number } = {}): Promise<number> {
    const t0 = this.c.now();
    return this.request({ op: "ping" }, options.timeoutMs).then(() => this.c.now() - t0);
  }

  // --- connection -------------------------------------------------------------------------------

  private async open(): Promise<void> {
    const g = ++this.gen;
    let url: string;
    let ws: any;
    try {
      url = typeof this.url === "function" ? await this.url() : this.url;
      // A token is asked for every attempt: the last one may have expired (4003), or been refused
      // at the handshake, which a browser only shows as 1006.
      if (this.o.getToken) this.token = await this.o.getToken();
      if (g !== this.gen) return;
      const protocols = ["wsrelay.v1"];
      if (this.token) protocols.push("wsrelay.bearer." + this.token);
      ws = this.ws = new this.WS(url, protocols);
    } catch (e) {
      if (g !== this.gen) return;
      this.report(this.o.getToken ? "token" : "connect", "could not start a connection: " + e, e);
      return this.lost(1006, "" + e);
    }
    ws.onopen = () => ws === this.ws && this.opened(url);
    ws.onmessage = (ev: any) => ws === this.ws && this.frame(ev.data);
    ws.onclose = (ev: any) => ws === this.ws && this.lost(ev.code, ev.reason || "");
    ws.onerror = noop; // a close event follows; without a listener the `ws` package would throw
  }

  private opened(url: string): void {
    this.st = "connected";
    this.stableTimer = this.c.setTimeout(() => (this.attempt = 0), this.o.stableAfterMs);
    this.alive();
    for (const s of this.subs.values()) this.subscribeNow(s);
    const q = this.queue;
    this.queue = [];
    for (const r of q) this.transmit(r);
    this.emit("state", "connected", "connecting");
    if (this.st === "connected") this.emit("connected", { url });
  }

  /** The socket closed (or we gave up on it): decide, from the close code, what comes next. */
  private lost(code: number, reason: string, closeIt = false): void {
    this.detach(closeIt, code, reason);
    let action = this.draining ? "drain" : closeAction(code);
    this.draining = false;
    if (action === "token" && !this.o.getToken) action = "stop";
    if (action === "stop") {
      this.listen("removeEventListener");
      this.failQueue("closed");
      this.setState("closed");
      this.emit("disconnected", { code, reason, reconnect: false });
      this.emit("closed", { code, reason });
      return;
    }
    const delayMs =
      action === "drain" ? this.o.random() * this.o.drainReconnectMaxMs : this.backoff(this.attempt++);
    this.setState("connecting");
    if (this.offline) {
      // No attempt is scheduled: the browser's "online" event starts the next one.
      this.emit("disconnected", { code, reason, reconnect: true });
      return;
    }
    this.emit("disconnected", { code, reason, reconnect: true, delayMs });
    this.emit("reconnecting", { attempt: this.attempt, delayMs });
    this.retryTimer = this.c.setTimeout(() => this.open(), delayMs);
  }

  /** Forgets the current socket. Requests sent on it fail with "disconnected": whether the relay
   *  acted on them cannot be known. Subscriptions wait for the next connection. */
  private detach(closeIt: boolean, code = 1000, reason = "bye"): void {
    const ws = this.ws;
    this.ws = null;
    this.gen++;
    this.c.clearTimeout(this.stableTimer);
    this.c.clearTimeout(this.liveTimer);
    if (ws && closeIt) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
    const p = this.pending;
    this.pending = new Map();
    for (const r of p.values()) this.settle(r, new RequestError(0, "disconnected"));
    for (const s of this.subs.values()) s._reset();
  }

  private backoff(n: number): number {
    const o = this.o;
    return backoffDelay(n, o.minReconnectDelayMs, o.maxReconnectDelayMs, o.reconnectFactor, o.random);
  }

  /** Browsers: going offline closes the socket and waits; coming back online reconnects at once. */
  private listen(how: "addEventListener" | "removeEventListener"): void {
    const w: any = typeof window !== "undefined" ? window : undefined;
    if (w && w[how]) {
      w[how]("offline", this.onOffline);
      w[how]("online", this.onOnline);
    }
  }

  private onOffline = (): void => {
    this.offline = true;
    this.c.clearTimeout(this.retryTimer);
    if (this.ws) this.lost(1006, "offline", true);
  };

  private onOnline = (): void => {
    this.offline = false;
    if (this.st === "connecting" && !this.ws) {
      this.c.clearTimeout(this.retryTimer);
      this.open();
    }
  };

  /** Any frame proves the connection alive. After pingIntervalMs of silence ask for a pong (a
   *  browser cannot see the relay's WebSocket pings); no answer within pongTimeoutMs: reconnect. */
  private alive(): void {
    const o = this.o;
    this.c.clearTimeout(this.liveTimer);
    if (!(o.pingIntervalMs > 0) || this.st !== "connected") return;
    this.liveTimer = this.c.setTimeout(() => {
      this.transmit({ cmd: { op: "ping" }, ok: noop, no: noop });
      this.liveTimer = this.c.setTimeout(() => this.lost(4000, "no pong", true), o.pongTimeoutMs);
    }, o.pingIntervalMs);
  }

  // --- frames from the relay --------------------------------------------------------------------

  private frame(data: unknown): void {
    this.alive();
    if (typeof data !== "string") return this.bad("binary frame");
    let f: any;
    try {
      f = JSON.parse(data);
    } catch {
      return this.bad("non-JSON frame");
    }
    if (!f || typeof f !== "object" || typeof f.op !== "string") return this.bad("frame without op");
    const sub = this.subs.get(f.channel);
    switch (f.op) {
      case "message":
        // None for a channel the app has just left: its messages may still be on the way.
        return sub && sub._message(f);
      case "ack":
      case "reply":
      case "pong":
      case "history":
      case "error":
        return this.answer(f);
      case "reconnect":
        this.draining = true; // the relay's 1001 close follows
        return;
      case "token_expiring":
        this.emit("token_expiring", { exp: f.exp, inMs: f.in_ms });
        this.refresh();
        return;
      case "subscribed": {
        if (typeof f.channel !== "string") return this.bad("subscribed without channel");
        let s = sub;
        if (!s) this.subs.set(f.channel, (s = new Subscription(f.channel, this.h)));
        this.emit("subscribed", s); // before the subscription's own events, so the app can listen
        return s._live(f, false);
      }
      case "unsubscribed":
        return sub && sub._end(f.reason, false);
      case "resubscribed":
        return sub && sub._resubscribed(f);
    }
    this.bad("unknown op " + f.op);
  }

  private answer(f: any): void {
    const r = this.pending.get(f.id);
    if (!r) {
      if (f.op === "error" && f.id === undefined) return this.bad("error " + f.code + " " + f.reason);
      // An id this client sent is an answer the app stopped waiting for (a timeout) or never waited
      // for (unsubscribe): not an error. Any other id is.
      if (!(f.id > 0 && f.id <= this.lastId)) this.bad("answer to an unknown id " + f.id);
      return;
    }
    this.pending.delete(f.id);
    this.settle(r, f.op === "error" ? new RequestError(+f.code || 0, "" + f.reason) : undefined, f);
  }

  private async refresh(): Promise<void> {
    const getToken = this.o.getToken;
    if (!getToken) return; // the relay closes with 4003 at expiry: "closed", as documented
    try {
      const token = (this.token = await getToken());
      await this.request({ op: "refresh", token });
    } catch (e) {
      // The old token's deadline still holds: the 4003 close that follows asks getToken again.
      this.report("token", "token refresh failed: " + e, e);
    }
  }

  // --- requests -----------------------------------------------------------------------------------

  private request(cmd: object, timeoutMs?: number): Promise<any> {
    return new Promise((ok, no) => {
      if (this.st !== "connected" && this.st !== "connecting") return no(new RequestError(0, "not connected"));
      const r: Request = { cmd, ok, no };
      r.timer = this.c.setTimeout(() => {
        if (r.id) this.pending.delete(r.id);
        this.queue = this.queue.filter((x) => x !== r);
        no(new RequestError(0, "timeout"));
      }, timeoutMs || this.o.requestTimeoutMs);
      if (this.st === "connected") this.transmit(r);
      else this.queue.push(r);
    });
  }

  private subscribeNow(s: Subscription): void {
    const since = s.position;
    const mine = () => this.subs.get(s.channel) === s;
    this.transmit({
      cmd: { op: "subscribe", channel: s.channel, since },
      ok: (f) => mine() && s._live(f, !!since),
      no: (e) => mine() && s._refused(e),
    });
  }

  /** Gives the request the next id and sends it. */
  private transmit(r: Request): void {
    const id = (r.id = ++this.lastId);
    let text: string;
    try {
      text = JSON.stringify({ ...r.cmd, id });
    } catch (e) {
      return this.settle(r, e as RequestError); // data JSON cannot carry (a cycle, a BigInt)
    }
    this.pending.set(id, r);
    this.write(text);
  }

  private write(cmd: string | object): void {
    try {
      this.ws.send(typeof cmd === "string" ? cmd : JSON.stringify(cmd));
    } catch {
      // The socket is closing: its close event fails what waits on it.
    }
  }

  private settle(r: Request, e?: RequestError, f?: any): void {
    this.c.clearTimeout(r.timer);
    if (e) r.no(e);
    else r.ok(f);
  }

  private failQueue(reason: string): void {
    const q = this.queue;
    this.queue = [];
    for (const r of q) this.settle(r, new RequestError(0, reason));
  }

  // --- events -----------------------------------------------------------------------------------

  private setState(s: ClientState): void {
    const prev = this.st;
    this.st = s;
    if (prev !== s) this.emit("state", s, prev);
  }

  private bad(what: string): void {
    this.report("protocol", "ignored from the relay: " + what);
  }

  /** The "error" event. A listener of it that throws is not reported again (that would loop). */
  private report(kind: string, message: string, cause?: unknown): void {
    if (this.reporting) return;
    this.reporting = true;
    try {
      this.emit("error", new ClientError(kind, message, cause));
    } finally {
      this.reporting = false;
    }
  }
}
