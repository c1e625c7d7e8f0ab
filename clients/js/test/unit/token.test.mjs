// Token refresh: token_expiring -> getToken -> refresh; failures are reported, never thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket, connected, flush, makeClient } from "./fakes.mjs";

test("token_expiring: the event, getToken, then a refresh with the new token", async () => {
  let n = 0;
  const { client, of } = makeClient({ getToken: async () => "tok" + ++n });
  const sock = await connected(client);
  sock.recv({ op: "token_expiring", exp: 1700000000, in_ms: 60000 });
  assert.deepEqual(of("token_expiring"), [{ exp: 1700000000, inMs: 60000 }]);
  await flush();
  const cmd = sock.lastOf("refresh");
  assert.deepEqual(cmd, { op: "refresh", token: "tok2", id: cmd.id });
  sock.recv({ op: "ack", id: cmd.id });
  await flush();
  assert.deepEqual(of("error"), []);
  // The next connection uses a token asked for then, not the one of the handshake.
  sock.serverClose(1006);
  client.disconnect();
});

test("a refused refresh is an error event of kind 'token'", async () => {
  const { client, of } = makeClient({ getToken: () => "tok" });
  const sock = await connected(client);
  sock.recv({ op: "token_expiring", exp: 1, in_ms: 10 });
  await flush();
  sock.recv({ op: "error", id: sock.lastOf("refresh").id, code: 401, reason: "different user" });
  await flush();
  const [err] = of("error");
  assert.equal(err.kind, "token");
  assert.equal(err.cause.code, 401);
  assert.equal(client.state, "connected");
  client.disconnect();
});

test("getToken failing on token_expiring: an error event, the connection stays", async () => {
  let fail = false;
  const { client, of } = makeClient({ getToken: async () => { if (fail) throw new Error("backend down"); return "t"; } });
  const sock = await connected(client);
  fail = true;
  sock.recv({ op: "token_expiring", exp: 1, in_ms: 10 });
  await flush();
  assert.equal(of("error")[0].kind, "token");
  assert.match(of("error")[0].message, /backend down/);
  assert.equal(sock.lastOf("refresh"), undefined);
  client.disconnect();
});

test("getToken failing before a connection: an error event and the next attempt after backoff", async () => {
  let fail = true;
  const { client, clock, of } = makeClient({ getToken: async () => { if (fail) throw new Error("no"); return "t"; } });
  client.connect();
  await flush();
  assert.equal(FakeSocket.all.length, 0);
  assert.equal(of("error")[0].kind, "token");
  assert.equal(of("reconnecting")[0].delayMs, 500);
  fail = false;
  clock.advance(500);
  await flush();
  assert.deepEqual(FakeSocket.last.protocols, ["wsrelay.v1", "wsrelay.bearer.t"]);
  client.disconnect();
});

test("token_expiring without getToken: only the event (the relay's 4003 then closes the client)", async () => {
  const { client, of } = makeClient({ token: "fixed" });
  const sock = await connected(client);
  sock.recv({ op: "token_expiring", exp: 1, in_ms: 10 });
  await flush();
  assert.equal(sock.lastOf("refresh"), undefined);
  assert.equal(of("token_expiring").length, 1);
  assert.deepEqual(of("error"), []);
  client.disconnect();
});

test("disconnect() while getToken is pending: no socket is opened afterwards", async () => {
  let release;
  const { client } = makeClient({ getToken: () => new Promise((r) => (release = r)) });
  client.connect();
  await flush();
  client.disconnect();
  release("late");
  await flush();
  assert.equal(FakeSocket.all.length, 0);
  assert.equal(client.state, "disconnected");
});
