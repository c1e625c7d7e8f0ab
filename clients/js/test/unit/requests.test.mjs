// publish / send / history / ping: ids, matching answers to requests, errors with codes, timeouts,
// and what happens to requests when the connection is not there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestError } from "../../dist/index.js";
import { FakeSocket, connected, flush, makeClient } from "./fakes.mjs";

/** Settles a promise into {value} or {error} without unhandled rejections. */
const outcome = (p) => p.then((value) => ({ value }), (error) => ({ error }));

test("every command carries a fresh id; answers settle the request with that id, in any order", async () => {
  const { client, of } = makeClient();
  const sock = await connected(client);
  const a = outcome(client.publish("room:1", { text: "a" }));
  const b = outcome(client.publish("room:1", { text: "b" }));
  const [ca, cb] = sock.sent;
  assert.deepEqual(ca, { op: "publish", channel: "room:1", data: { text: "a" }, id: ca.id });
  assert.notEqual(ca.id, cb.id);
  sock.recv({ op: "ack", id: cb.id });
  sock.recv({ op: "error", id: ca.id, code: 503, reason: "broker unavailable" });
  assert.deepEqual(await b, { value: undefined });
  const { error } = await a;
  assert.ok(error instanceof RequestError);
  assert.equal(error.code, 503);
  assert.equal(error.reason, "broker unavailable");
  assert.deepEqual(of("error"), []);
  client.disconnect();
});

test("send resolves with the app's reply data, or undefined on a plain ack", async () => {
  const { client } = makeClient();
  const sock = await connected(client);
  const r1 = client.send({ cmd: "whoami" });
  sock.recv({ op: "reply", id: sock.lastOf("send").id, data: { user: "ada" } });
  assert.deepEqual(await r1, { user: "ada" });
  const r2 = client.send({ cmd: "noop" });
  sock.recv({ op: "ack", id: sock.lastOf("send").id });
  assert.equal(await r2, undefined);
  client.disconnect();
});

test("history sends limit and since and resolves with messages and the position", async () => {
  const { client } = makeClient();
  const sock = await connected(client);
  const p = client.history("room:1", { limit: 2, since: { offset: 3, epoch: "e1" } });
  const cmd = sock.lastOf("history");
  assert.deepEqual(cmd, { op: "history", channel: "room:1", limit: 2, since: { offset: 3, epoch: "e1" }, id: cmd.id });
  const messages = [{ offset: 4, data: "x" }, { offset: 5, data: "y" }];
  sock.recv({ op: "history", id: cmd.id, channel: "room:1", messages, offset: 9, epoch: "e1" });
  assert.deepEqual(await p, { messages, offset: 9, epoch: "e1" });
  client.disconnect();
});

test("ping resolves with the round trip measured on the clock", async () => {
  const { client, clock } = makeClient();
  const sock = await connected(client);
  const p = client.ping();
  clock.advance(42);
  sock.recv({ op: "pong", id: sock.lastOf("ping").id });
  assert.equal(await p, 42);
  client.disconnect();
});

test("no answer in time: RequestError 0 timeout; the late answer is ignored quietly", async () => {
  const { client, clock, of } = makeClient({ requestTimeoutMs: 1000 });
  const sock = await connected(client);
  const p = outcome(client.publish("room:1", 1));
  const q = outcome(client.publish("room:1", 2, { timeoutMs: 5000 }));
  clock.advance(1000);
  const { error } = await p;
  assert.equal(error.code, 0);
  assert.equal(error.reason, "timeout");
  sock.recv({ op: "ack", id: sock.sent[0].id });
  assert.deepEqual(of("error"), [], "an answer to an id this client sent is not a protocol error");
  sock.recv({ op: "ack", id: sock.sent[1].id });
  assert.deepEqual(await q, { value: undefined }, "per-request timeoutMs");
  client.disconnect();
});

test("while connecting, requests wait for the connection, inside their timeout", async () => {
  const { client, clock } = makeClient({ requestTimeoutMs: 1000 });
  client.connect();
  const sock = FakeSocket.last;
  const late = outcome(client.publish("room:1", "late"));
  clock.advance(600);
  const p = outcome(client.publish("room:1", "ok"));
  clock.advance(400);
  assert.equal((await late).error.reason, "timeout");
  sock.open();
  assert.deepEqual(sock.sent.map((c) => c.data), ["ok"], "only the one still waiting is sent");
  sock.recv({ op: "ack", id: sock.sent[0].id });
  assert.deepEqual(await p, { value: undefined });
  client.disconnect();
});

test("requests while disconnected or closed fail at once with 'not connected'", async () => {
  const { client } = makeClient();
  let r = await outcome(client.publish("room:1", 1));
  assert.equal(r.error.code, 0);
  assert.equal(r.error.reason, "not connected");
  const sock = await connected(client);
  sock.serverClose(4500);
  r = await outcome(client.ping());
  assert.equal(r.error.reason, "not connected");
});

test("a lost connection fails requests in flight with 'disconnected'; queued ones wait for the next", async () => {
  const { client, clock } = makeClient();
  const sock = await connected(client);
  const inFlight = outcome(client.publish("room:1", 1));
  sock.serverClose(1006);
  assert.equal((await inFlight).error.reason, "disconnected");
  const queued = outcome(client.publish("room:1", 2));
  clock.advance(500);
  await flush();
  FakeSocket.last.open();
  FakeSocket.last.recv({ op: "ack", id: FakeSocket.last.lastOf("publish").id });
  assert.deepEqual(await queued, { value: undefined });
  client.disconnect();
});

test("queued requests fail with 'closed' on a terminal close, 'disconnected' on disconnect()", async () => {
  const { client } = makeClient();
  client.connect();
  const a = outcome(client.publish("room:1", 1));
  FakeSocket.last.serverClose(1008);
  assert.equal((await a).error.reason, "closed");

  const second = makeClient();
  second.client.connect();
  const b = outcome(second.client.publish("room:1", 1));
  second.client.disconnect();
  assert.equal((await b).error.reason, "disconnected");
  assert.equal(second.clock.pending, 0);
});

test("data JSON cannot carry rejects that request and nothing else", async () => {
  const { client } = makeClient();
  const sock = await connected(client);
  const cyclic = {};
  cyclic.self = cyclic;
  const r = await outcome(client.publish("room:1", cyclic));
  assert.ok(r.error instanceof TypeError);
  assert.equal(sock.sent.length, 0);
  const ok = client.publish("room:1", 1);
  sock.recv({ op: "ack", id: sock.lastOf("publish").id });
  await ok;
  client.disconnect();
});
