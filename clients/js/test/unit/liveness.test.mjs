// Liveness: browsers cannot see the relay's WebSocket pings, so after a silence the client asks
// with {"op":"ping"} and gives the connection up when no answer comes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket, connected, makeClient } from "./fakes.mjs";

const opts = { pingIntervalMs: 25000, pongTimeoutMs: 10000 };

test("after pingIntervalMs of silence a ping; its pong keeps the connection", async () => {
  const { client, clock, of } = makeClient(opts);
  const sock = await connected(client);
  clock.advance(24999);
  assert.equal(sock.lastOf("ping"), undefined);
  clock.advance(1);
  const ping = sock.lastOf("ping");
  assert.ok(ping && ping.id > 0);
  clock.advance(9999);
  sock.recv({ op: "pong", id: ping.id });
  clock.advance(20000);
  assert.equal(client.state, "connected");
  assert.deepEqual(of("error"), [], "the liveness pong is an expected answer");
  client.disconnect();
});

test("any frame resets the silence", async () => {
  const { client, clock } = makeClient(opts);
  const sock = await connected(client);
  for (let i = 0; i < 5; i++) {
    clock.advance(20000);
    sock.recv({ op: "message", channel: "x", data: i });
  }
  assert.equal(sock.lastOf("ping"), undefined);
  client.disconnect();
});

test("no pong within pongTimeoutMs: close 4000 'no pong' and reconnect with backoff", async () => {
  const { client, clock, of } = makeClient(opts);
  const sock = await connected(client);
  clock.advance(25000 + 10000);
  assert.deepEqual(sock.closedWith, { code: 4000, reason: "no pong" });
  assert.equal(client.state, "connecting");
  assert.deepEqual(of("disconnected"), [{ code: 4000, reason: "no pong", reconnect: true, delayMs: 500 }]);
  clock.advance(500);
  assert.equal(FakeSocket.all.length, 2);
  client.disconnect();
});

test("pingIntervalMs 0 turns the check off", async () => {
  const { client, clock } = makeClient({ pingIntervalMs: 0 });
  const sock = await connected(client);
  clock.advance(3600 * 1000);
  assert.equal(sock.lastOf("ping"), undefined);
  assert.equal(client.state, "connected");
  client.disconnect();
});
