// What each close code makes the client do (docs/protocol.md "Close codes").
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket, connected, flush, makeClient } from "./fakes.mjs";

for (const code of [1002, 1005, 1006, 1011, 1013, 4000, 4001, 4002, 4429, 4499]) {
  test(`close ${code}: reconnect with backoff`, async () => {
    const { client, clock, of } = makeClient({ random: () => 1 });
    const sock = await connected(client);
    sock.serverClose(code, "why");
    assert.equal(client.state, "connecting");
    assert.deepEqual(of("disconnected"), [{ code, reason: "why", reconnect: true, delayMs: 500 }]);
    clock.advance(500);
    await flush();
    assert.equal(FakeSocket.all.length, 2);
    client.disconnect();
  });
}

for (const code of [1000, 1001]) {
  test(`close ${code}: reconnect after a random 0..drainReconnectMaxMs, not the backoff`, async () => {
    const { client, clock, of } = makeClient({ random: () => 0.25, drainReconnectMaxMs: 2000 });
    // Fail a few attempts first so the backoff would be long.
    client.connect();
    for (let i = 0; i < 5; i++) {
      FakeSocket.last.serverClose(1006);
      clock.advance(30000);
      await flush();
    }
    FakeSocket.last.open();
    FakeSocket.last.serverClose(code);
    assert.equal(of("reconnecting").at(-1).delayMs, 500);
    client.disconnect();
  });
}

test('{"op":"reconnect"} makes the close that follows a drain, whatever its code', async () => {
  const { client, of } = makeClient({ random: () => 0.5 });
  const sock = await connected(client);
  sock.recv({ op: "reconnect" });
  sock.serverClose(1006);
  assert.equal(of("reconnecting")[0].delayMs, 1000);
  assert.deepEqual(of("error"), [], "reconnect is a known op");
  client.disconnect();
});

for (const code of [1003, 1007, 1008, 1009, 4500, 4501, 4999]) {
  test(`close ${code}: stop, state "closed", no reconnect`, async () => {
    const { client, clock, of } = makeClient();
    const sock = await connected(client);
    sock.serverClose(code, "no");
    assert.equal(client.state, "closed");
    assert.deepEqual(of("closed"), [{ code, reason: "no" }]);
    assert.deepEqual(of("disconnected"), [{ code, reason: "no", reconnect: false }]);
    clock.advance(3600 * 1000);
    await flush();
    assert.equal(FakeSocket.all.length, 1);
    client.connect(); // terminal: connect() does nothing
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(clock.pending, 0);
  });
}

test("close 4003 without getToken: closed (the same token cannot get back in)", async () => {
  const { client, of } = makeClient({ token: "t1" });
  const sock = await connected(client);
  sock.serverClose(4003, "token expired");
  assert.equal(client.state, "closed");
  assert.equal(of("closed").length, 1);
});

test("close 4003 with getToken: a new token, then reconnect with it", async () => {
  let n = 0;
  const { client, clock } = makeClient({ getToken: async () => "tok" + ++n });
  const sock = await connected(client);
  assert.deepEqual(sock.protocols, ["wsrelay.v1", "wsrelay.bearer.tok1"]);
  sock.serverClose(4003, "token expired");
  assert.equal(client.state, "connecting");
  clock.advance(500);
  await flush();
  assert.deepEqual(FakeSocket.last.protocols, ["wsrelay.v1", "wsrelay.bearer.tok2"]);
  client.disconnect();
});

test("a handshake refused (1006 before open) asks getToken again on the next attempt", async () => {
  let n = 0;
  const { client, clock } = makeClient({ getToken: () => "tok" + ++n });
  client.connect();
  await flush();
  FakeSocket.last.serverClose(1006);
  clock.advance(500);
  await flush();
  assert.equal(n, 2);
  assert.deepEqual(FakeSocket.last.protocols, ["wsrelay.v1", "wsrelay.bearer.tok2"]);
  client.disconnect();
});

test("subprotocols: wsrelay.v1 alone without a token", async () => {
  const { client } = makeClient();
  const sock = await connected(client);
  assert.deepEqual(sock.protocols, ["wsrelay.v1"]);
  client.disconnect();
});

test("disconnect(): close 1000, state disconnected, no reconnect; connect() starts again", async () => {
  const { client, clock, of } = makeClient();
  const sock = await connected(client);
  client.disconnect();
  assert.deepEqual(sock.closedWith, { code: 1000, reason: "bye" });
  assert.equal(client.state, "disconnected");
  assert.deepEqual(of("disconnected"), [{ code: 1000, reason: "disconnect()", reconnect: false }]);
  sock.serverClose(1000); // the relay's answer to our close: ignored
  clock.advance(60000);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(clock.pending, 0);
  client.connect();
  assert.equal(FakeSocket.all.length, 2);
  client.disconnect();
});

test("state events: disconnected -> connecting -> connected -> connecting -> closed", async () => {
  const { client, of } = makeClient();
  const sock = await connected(client);
  sock.serverClose(1006);
  FakeSocket.last; // no new socket yet: the delay runs
  client.disconnect();
  const states = of("state");
  assert.deepEqual(states, ["connecting", "connected", "connecting", "disconnected"]);
});

test("a url function is asked for every attempt (one relay after another)", async () => {
  const urls = ["ws://a/ws", "ws://b/ws"];
  let i = 0;
  const { client, clock, of } = makeClient({}, () => urls[i++ % 2]);
  client.connect();
  await flush();
  FakeSocket.last.open();
  assert.deepEqual(of("connected"), [{ url: "ws://a/ws" }]);
  FakeSocket.last.serverClose(1001);
  clock.advance(2000);
  await flush();
  assert.equal(FakeSocket.last.url, "ws://b/ws");
  client.disconnect();
});

test("browsers: offline closes the socket and waits; online reconnects at once", async () => {
  const win = new EventTarget();
  globalThis.window = win;
  try {
    const { client, clock, of } = makeClient();
    const sock = await connected(client);
    win.dispatchEvent(new Event("offline"));
    assert.ok(sock.closedWith, "the socket was closed");
    assert.equal(client.state, "connecting");
    clock.advance(60000);
    assert.equal(FakeSocket.all.length, 1, "no attempt while offline");
    win.dispatchEvent(new Event("online"));
    await flush();
    assert.equal(FakeSocket.all.length, 2, "online: at once");
    assert.deepEqual(of("disconnected"), [{ code: 1006, reason: "offline", reconnect: true }]);
    assert.deepEqual(of("reconnecting"), [], "no delay to announce: online decides");
    client.disconnect();
    win.dispatchEvent(new Event("online")); // no longer listening
    assert.equal(FakeSocket.all.length, 2);
  } finally {
    delete globalThis.window;
  }
});

test("without a random option, Math.random draws the delays (drain and backoff)", async () => {
  const { client, clock, of } = makeClient({ random: undefined });
  const sock = await connected(client);
  sock.serverClose(1001);
  clock.advance(2000);
  await flush();
  FakeSocket.last.serverClose(1006);
  const [drain, backoff] = of("reconnecting").map((e) => e.delayMs);
  assert.ok(drain >= 0 && drain <= 2000, "drain delay " + drain);
  assert.ok(backoff >= 0 && backoff <= 500, "backoff delay " + backoff);
  client.disconnect();
});
