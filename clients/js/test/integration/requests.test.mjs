// Requests against a real relay with auth, the hook example app and a channel with history:
// publish and its ack, send and the app's reply, history, ping, and errors with their codes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, nowS, once, signJwt, skipReason, startHookApp, startRelay, withLogs } from "../harness.mjs";
import { SECRET, connect, disconnectAll, newClient, outcome, subscribed } from "./clients.mjs";

describe("requests", { skip: skipReason() }, () => {
  let relay;
  let client;
  let grants;

  before(() => withLogs(async () => {
    const app = await startHookApp();
    relay = await startRelay({
      auth: { enabled: true, jwt: { secret: SECRET } },
      hook: { url: app.url + "/hook", secret: app.secret },
      channels: [{ pattern: "room:*", history_size: 100 }],
    });
    const token = signJwt({ sub: "ada", exp: nowS() + 600, channels: ["room:*", "plain:*"], publish: ["room:*", "plain:*"] }, SECRET);
    client = newClient(relay.wsUrl, { token });
    grants = [];
    client.on("subscribed", (s) => grants.push(s.channel));
    await connect(client);
  }));

  after(async () => {
    disconnectAll();
    await cleanup();
  });

  test("the app's connect answer subscribes the client to lobby: a Subscription appears", async () => {
    await withLogs(async () => {
      if (!grants.includes("lobby")) await once(client, "subscribed", { filter: (s) => s.channel === "lobby" });
      assert.equal(client.getSubscription("lobby").state, "subscribed");
    });
  });

  test("publish resolves on the ack; the message comes back with its position", async () => {
    await withLogs(async () => {
      const sub = await subscribed(client, "room:1");
      assert.equal(sub.position.offset, 0, "an empty history's position");
      const got = once(sub, "message");
      await client.publish("room:1", { text: "hi" });
      const m = await got;
      assert.deepEqual(m.data, { text: "hi" });
      assert.equal(m.offset, 1);
      assert.equal(typeof m.epoch, "string");
      assert.deepEqual(sub.position, { offset: 1, epoch: m.epoch });
    });
  });

  test("history answers with what was published", async () => {
    await withLogs(async () => {
      for (const n of [1, 2, 3]) await client.publish("room:h", { n });
      const h = await client.history("room:h", { limit: 2 });
      assert.deepEqual(h.messages.map((m) => m.data), [{ n: 2 }, { n: 3 }]);
      assert.equal(h.offset, 3);
      const since = await client.history("room:h", { since: { offset: 1, epoch: h.epoch } });
      assert.deepEqual(since.messages.map((m) => m.offset), [2, 3]);
    });
  });

  test("send resolves with the app's reply through the hook", async () => {
    await withLogs(async () => {
      assert.deepEqual(await client.send({ cmd: "echo", value: [1, 2] }), [1, 2]);
      const me = await client.send({ cmd: "whoami" });
      assert.equal(me.user, "ada");
    });
  });

  test("ping resolves with a round trip", async () => {
    const ms = await client.ping();
    assert.ok(ms >= 0 && ms < 5000);
  });

  test("errors come back as RequestError with the relay's or the app's code", async () => {
    await withLogs(async () => {
      // Each outcome taken at once: the answers come in any order (the app's goes through the
      // hook), and a rejection nobody handles yet fails the test run.
      const cases = [
        [outcome(client.publish("secret:1", 1)), 403], // outside the token's publish grant
        [outcome(client.publish("no spaces", 1)), 422],
        [outcome(client.send({ cmd: "nope" })), 404], // the app's error answer
        [outcome(client.history("plain:1")), 405],
      ];
      for (const [settled, code] of cases) {
        const { error } = await settled;
        assert.equal(error?.name, "RequestError", `expected a RequestError ${code}`);
        assert.equal(error.code, code, error.message);
        assert.equal(typeof error.reason, "string");
      }
    });
  });

  test("a refused subscribe: the subscription's error event with the code, then it is gone", async () => {
    await withLogs(async () => {
      const sub = client.subscribe("secret:x");
      const e = await once(sub, "error");
      assert.equal(e.code, 403);
      assert.equal(sub.state, "unsubscribed");
      assert.equal(client.getSubscription("secret:x"), undefined);
      const priv = client.subscribe("private:bob"); // the token does not allow it either
      assert.equal((await once(priv, "error")).code, 403);
    });
  });

  test("nothing the relay sent was reported as bad input", () => {
    assert.deepEqual(client.errors.map(String), []);
    assert.equal(client.state, "connected");
  });
});
