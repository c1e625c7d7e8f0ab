// Tokens against a real relay: a refresh before expiry keeps the connection; an expiry (4003)
// makes the client ask getToken and come back; a refused handshake asks getToken again.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, nowS, once, signJwt, skipReason, startRelay, waitUntil, withLogs } from "../harness.mjs";
import { SECRET, connect, disconnectAll, newClient, subscribed } from "./clients.mjs";

const claims = (expInS) => ({ sub: "ada", exp: nowS() + expInS, channels: ["room:*"], publish: ["room:*"] });

describe("tokens", { skip: skipReason() }, () => {
  after(async () => {
    disconnectAll();
    await cleanup();
  });

  test("token_expiring -> getToken -> refresh: the connection outlives the first token", async () => {
    await withLogs(async () => {
      const relay = await startRelay({ auth: { enabled: true, jwt: { secret: SECRET }, expiry_warning_ms: 1500 } });
      const first = claims(2);
      const tokens = [signJwt(first, SECRET)];
      let asked = 0;
      const client = newClient(relay.wsUrl, {
        getToken: () => tokens[asked++] ?? signJwt(claims(600), SECRET),
      });
      const lost = [];
      client.on("disconnected", (e) => lost.push(e));
      // Listening first: the warning may come with the connection's first frames.
      const warned = once(client, "token_expiring", { timeoutMs: 5000 });
      await connect(client);
      const warning = await warned;
      assert.equal(warning.exp, first.exp);
      assert.ok(warning.inMs <= 2000);
      // The first token's deadline passes: that is what is being tested, not a synchronisation.
      await waitUntil(() => Date.now() > first.exp * 1000 + 500, { timeoutMs: 5000, what: "the first token's exp" });
      assert.ok((await client.ping()) >= 0);
      assert.equal(asked, 2, "one token to connect, one for the refresh");
      assert.deepEqual(lost, [], "the connection was never lost");
      assert.deepEqual(client.errors.map(String), []);
      client.disconnect();
    });
  });

  test("4003 at expiry: getToken, reconnected, subscriptions restored", async () => {
    await withLogs(async () => {
      const relay = await startRelay({ auth: { enabled: true, jwt: { secret: SECRET }, expiry_warning_ms: 0 } });
      let asked = 0;
      const client = newClient(relay.wsUrl, {
        getToken: () => signJwt(claims(++asked === 1 ? 3 : 600), SECRET),
      });
      const lost = once(client, "disconnected", { timeoutMs: 8000 });
      await connect(client);
      const sub = await subscribed(client, "room:1");
      const back = once(sub, "subscribed", { timeoutMs: 15000, what: "resubscribed after 4003" });
      const e = await lost;
      assert.equal(e.code, 4003);
      assert.equal(e.reconnect, true);
      await back;
      assert.equal(client.state, "connected");
      assert.equal(asked, 2);
      assert.equal(sub.state, "subscribed");
      await client.publish("room:1", "still here");
      client.disconnect();
    });
  });

  test("a token refused at the handshake (401, seen as 1006): the next attempt asks getToken again", async () => {
    await withLogs(async () => {
      const relay = await startRelay({ auth: { enabled: true, jwt: { secret: SECRET } } });
      let asked = 0;
      const client = newClient(relay.wsUrl, {
        getToken: () => signJwt(claims(600), ++asked === 1 ? "not-the-secret" : SECRET),
      });
      const lost = [];
      client.on("disconnected", (e) => lost.push(e));
      await connect(client, 15000);
      assert.equal(asked, 2);
      assert.equal(lost.length, 1);
      assert.equal(lost[0].code, 1006);
      client.disconnect();
    });
  });
});
