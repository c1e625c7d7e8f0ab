// Subscriptions across reconnects: restore with since, exactly once in order, gaps the app must
// hear about, hook grants, refusals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket, connected, flush, makeClient, record } from "./fakes.mjs";

const msg = (offset, epoch = "e1", channel = "room:1") => ({ op: "message", channel, offset, epoch, data: { n: offset } });

/** Loses the connection and opens the next one; returns the new socket. */
async function reconnect(clock, code = 1006) {
  FakeSocket.last.serverClose(code);
  clock.advance(30000);
  await flush();
  FakeSocket.last.open();
  return FakeSocket.last;
}

test("resubscribes with since its last position; recovery overlap is delivered once, in order", async () => {
  const { client, clock } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  let sock = await connected(client);
  let cmd = sock.lastOf("subscribe");
  assert.deepEqual(cmd, { op: "subscribe", channel: "room:1", id: cmd.id });
  sock.recv({ op: "ack", id: cmd.id, offset: 2, epoch: "e1" });
  assert.equal(sub.state, "subscribed");
  assert.deepEqual(sub.position, { offset: 2, epoch: "e1" });
  sock.recv(msg(3));
  sock.recv(msg(4));

  sock = await reconnect(clock);
  assert.equal(sub.state, "subscribing");
  cmd = sock.lastOf("subscribe");
  assert.deepEqual(cmd.since, { offset: 4, epoch: "e1" });
  sock.recv(msg(4)); // a duplicate
  sock.recv(msg(5));
  sock.recv(msg(6));
  sock.recv({ op: "ack", id: cmd.id, offset: 6, epoch: "e1", recovered: true });
  sock.recv(msg(6)); // a duplicate
  sock.recv(msg(7));

  const offsets = ev.filter((e) => e[0] === "message").map((e) => e[1].offset);
  assert.deepEqual(offsets, [3, 4, 5, 6, 7]);
  assert.deepEqual(ev.filter((e) => e[0] !== "message"), [
    ["subscribed", { offset: 2, epoch: "e1", recovered: undefined }],
    ["subscribed", { offset: 6, epoch: "e1", recovered: true }],
    ["recovered", { position: { offset: 6, epoch: "e1" } }],
  ]);
  assert.deepEqual(ev.find((e) => e[0] === "message")[1], { data: { n: 3 }, offset: 3, epoch: "e1" });
  client.disconnect();
});

test("not recovered: a gap, and the position becomes the ack's", async () => {
  const { client, clock } = makeClient();
  const sub = client.subscribe("room:1", { since: { offset: 10, epoch: "old" } });
  const ev = record(sub);
  const sock = await connected(client);
  const cmd = sock.lastOf("subscribe");
  assert.deepEqual(cmd.since, { offset: 10, epoch: "old" }, "the app's since on the first subscribe");
  sock.recv({ op: "ack", id: cmd.id, offset: 3, epoch: "new", recovered: false });
  assert.deepEqual(sub.position, { offset: 3, epoch: "new" });
  assert.deepEqual(ev.at(-1), ["gap", { reason: "not recovered", position: { offset: 3, epoch: "new" } }]);
  sock.recv(msg(4, "new"));
  assert.deepEqual(ev.at(-1)[1].offset, 4);
  await reconnect(clock);
  client.disconnect();
});

test("a channel without history: after a reconnect, a gap with reason 'reconnect'", async () => {
  const { client, clock } = makeClient();
  const sub = client.subscribe("plain");
  const ev = record(sub);
  let sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id });
  sock.recv({ op: "message", channel: "plain", data: "hi" });
  assert.deepEqual(ev.at(-1), ["message", { data: "hi", offset: undefined, epoch: undefined }]);
  assert.equal(ev.filter((e) => e[0] === "gap").length, 0, "the first subscribe has no gap");
  sock = await reconnect(clock);
  const cmd = sock.lastOf("subscribe");
  assert.equal(cmd.since, undefined);
  sock.recv({ op: "ack", id: cmd.id });
  assert.deepEqual(ev.at(-1), ["gap", { reason: "reconnect", position: undefined }]);
  client.disconnect();
});

test("live offsets that jump: a gap, then the message", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id, offset: 1, epoch: "e1" });
  sock.recv(msg(2));
  sock.recv(msg(5));
  assert.deepEqual(ev.slice(-3), [
    ["message", { data: { n: 2 }, offset: 2, epoch: "e1" }],
    ["gap", { reason: "offset jump", position: { offset: 2, epoch: "e1" } }],
    ["message", { data: { n: 5 }, offset: 5, epoch: "e1" }],
  ]);
  client.disconnect();
});

test("a new epoch by message: from offset 1 it is the next message; later, a gap", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id, offset: 7, epoch: "e1" });
  sock.recv(msg(1, "e2")); // the history expired and started again
  assert.equal(ev.filter((e) => e[0] === "gap").length, 0);
  assert.deepEqual(sub.position, { offset: 1, epoch: "e2" });
  sock.recv(msg(4, "e3"));
  assert.deepEqual(ev.at(-2), ["gap", { reason: "offset jump", position: { offset: 1, epoch: "e2" } }]);
  client.disconnect();
});

test("resubscribed from the relay: a gap with the position to go on from", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id, offset: 7, epoch: "e1" });
  sock.recv({ op: "resubscribed", channel: "room:1", gap: true, offset: 20, epoch: "e1" });
  assert.deepEqual(ev.at(-1), ["gap", { reason: "resubscribed", position: { offset: 20, epoch: "e1" } }]);
  sock.recv(msg(20));
  sock.recv(msg(21));
  assert.deepEqual(ev.filter((e) => e[0] === "message").map((e) => e[1].offset), [21]);
  client.disconnect();
});

test("a hook grant creates a subscription, restored on reconnect; the 409 of the race is ignored", async () => {
  const { client, clock, of } = makeClient();
  let sock = await connected(client);
  sock.recv({ op: "subscribed", channel: "lobby", offset: 5, epoch: "e1" });
  const sub = of("subscribed")[0];
  assert.equal(client.getSubscription("lobby"), sub);
  assert.equal(sub.state, "subscribed");
  assert.deepEqual(sub.position, { offset: 5, epoch: "e1" });
  const ev = record(sub);

  sock = await reconnect(clock);
  const cmd = sock.lastOf("subscribe");
  assert.deepEqual(cmd.since, { offset: 5, epoch: "e1" });
  // The app's connect answer grants it again before the client's own subscribe is read.
  sock.recv({ op: "subscribed", channel: "lobby", offset: 5, epoch: "e1" });
  sock.recv({ op: "error", id: cmd.id, code: 409, reason: "already subscribed" });
  assert.equal(sub.state, "subscribed");
  assert.deepEqual(ev, [["subscribed", { offset: 5, epoch: "e1", recovered: undefined }]], "nothing missed: no gap");
  assert.equal(of("subscribed").length, 2);
  assert.deepEqual(of("error"), []);
  client.disconnect();
});

test("a refused subscribe: the error event, state unsubscribed, removed from the client", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("private:x");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "error", id: sock.lastOf("subscribe").id, code: 403, reason: "not allowed to subscribe to this channel" });
  assert.equal(sub.state, "unsubscribed");
  assert.equal(ev[0][0], "error");
  assert.equal(ev[0][1].code, 403);
  assert.equal(client.getSubscription("private:x"), undefined);
  client.subscribe("private:x"); // the channel can be asked for again
  client.disconnect();
});

test("subscribe 503: retried with backoff on the same connection", async () => {
  const { client, clock } = makeClient({ random: () => 1 });
  const sub = client.subscribe("room:1");
  const sock = await connected(client);
  sock.recv({ op: "error", id: sock.lastOf("subscribe").id, code: 503, reason: "broker unavailable" });
  assert.equal(sub.state, "subscribing");
  clock.advance(499);
  assert.equal(sock.sent.filter((c) => c.op === "subscribe").length, 1);
  clock.advance(1);
  assert.equal(sock.sent.filter((c) => c.op === "subscribe").length, 2);
  sock.recv({ op: "error", id: sock.lastOf("subscribe").id, code: 503, reason: "broker unavailable" });
  clock.advance(1000);
  assert.equal(sock.sent.filter((c) => c.op === "subscribe").length, 3, "the second retry waits longer");
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id });
  assert.equal(sub.state, "subscribed");
  client.disconnect();
});

test("subscribe twice to one channel throws; subscribing while connected sends at once", async () => {
  const { client } = makeClient();
  const sock = await connected(client);
  client.subscribe("room:1");
  assert.equal(sock.lastOf("subscribe").channel, "room:1");
  assert.throws(() => client.subscribe("room:1"), /already subscribed/);
  client.disconnect();
});

test("unsubscribe() tells the relay and ends the subscription; later messages are ignored", async () => {
  const { client, of } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id, offset: 1, epoch: "e1" });
  sub.unsubscribe();
  const cmd = sock.lastOf("unsubscribe");
  assert.equal(cmd.channel, "room:1");
  assert.deepEqual(ev.at(-1), ["unsubscribed", { reason: "unsubscribe" }]);
  sock.recv(msg(2));
  sock.recv({ op: "ack", id: cmd.id });
  assert.equal(ev.filter((e) => e[0] === "message").length, 0);
  assert.deepEqual(of("error"), []);
  assert.equal(client.getSubscription("room:1"), undefined);
  client.disconnect();
});

test("unsubscribed from the relay ends the subscription with its reason", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("room:1");
  const ev = record(sub);
  const sock = await connected(client);
  sock.recv({ op: "unsubscribed", channel: "room:1", reason: "forbidden" });
  assert.deepEqual(ev.at(-1), ["unsubscribed", { reason: "forbidden" }]);
  assert.equal(sub.state, "unsubscribed");
  assert.equal(sock.lastOf("unsubscribe"), undefined, "nothing to tell the relay");
  client.disconnect();
});

test("subscriptions survive disconnect() and are restored by connect()", async () => {
  const { client } = makeClient();
  const sub = client.subscribe("room:1");
  let sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id, offset: 3, epoch: "e1" });
  client.disconnect();
  assert.equal(sub.state, "subscribing");
  sock = await connected(client);
  assert.deepEqual(sock.lastOf("subscribe").since, { offset: 3, epoch: "e1" });
  client.disconnect();
});
