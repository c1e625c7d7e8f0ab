// Fakes the unit tests inject through the client's options: a WebSocket that records what the
// client sends and lets the test play the relay, and a clock whose time only moves when told.
import { Client } from "../../dist/index.js";

export class FakeClock {
  constructor() {
    this.t = 0;
    this.timers = new Map(); // id -> {at, fn}
    this.nextId = 1;
  }
  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn });
    return id;
  };
  clearTimeout = (id) => {
    this.timers.delete(id);
  };
  now = () => this.t;
  /** Moves time forward by ms, running every timer that falls due, in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next;
      for (const [id, timer] of this.timers) if (timer.at <= end && (!next || timer.at < next[1].at)) next = [id, timer];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
  /** How many timers are waiting. */
  get pending() {
    return this.timers.size;
  }
}

export class FakeSocket {
  static all = [];
  static get last() {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closedWith = undefined;
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code, reason) {
    this.closedWith = { code, reason };
  }
  // The relay's side:
  open() {
    this.onopen({});
  }
  recv(frame) {
    this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }
  serverClose(code, reason = "") {
    this.onclose({ code, reason });
  }
  /** The last command the client sent with this op. */
  lastOf(op) {
    for (let i = this.sent.length - 1; i >= 0; i--) if (this.sent[i].op === op) return this.sent[i];
    return undefined;
  }
}

/** Lets the client's pending promises and async steps (getToken, the url function) run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A client on fakes, with every event it emitted recorded in `events` as [name, ...args]. */
export function makeClient(options = {}, url = "ws://relay.test/ws") {
  FakeSocket.all = [];
  const clock = new FakeClock();
  const client = new Client(url, { WebSocket: FakeSocket, clock, random: () => 1, ...options });
  const events = [];
  for (const name of ["state", "connected", "disconnected", "reconnecting", "closed", "error", "subscribed", "token_expiring"]) {
    client.on(name, (...args) => events.push([name, ...args]));
  }
  const of = (name) => events.filter((e) => e[0] === name).map((e) => e[1]);
  return { client, clock, events, of };
}

/** Connects and opens the socket; returns it. */
export async function connected(client) {
  client.connect();
  await flush();
  FakeSocket.last.open();
  return FakeSocket.last;
}

/** Records a subscription's events as [name, arg]. */
export function record(sub) {
  const events = [];
  for (const name of ["message", "subscribed", "recovered", "gap", "error", "unsubscribed"]) {
    sub.on(name, (arg) => events.push([name, arg]));
  }
  return events;
}
