// A draining relay: clients reconnect after a jittered delay (the spread is asserted, not the
// timing), and subscriptions on a channel with history resume on another relay with since:
// every message exactly once, in order.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, once, skipReason, startRedis, startRelay, withLogs } from "../harness.mjs";
import { connect, disconnectAll, newClient, subscribed } from "./clients.mjs";

/** A url function that gives `first` on the first attempt and `then` on every later one, the way
 *  an app picks another relay (or a load balancer does). */
const firstThen = (first, then) => {
  let n = 0;
  return () => (n++ === 0 ? first : then);
};

describe("drain", { skip: skipReason() }, () => {
  after(async () => {
    disconnectAll();
    await cleanup();
  });

  test("20 clients of a draining relay come back with delays spread over 0..drainReconnectMaxMs", async () => {
    await withLogs(async () => {
      const a = await startRelay({ "drain.window_ms": 1000 });
      const b = await startRelay({});
      const clients = [];
      for (let i = 0; i < 20; i++) clients.push(newClient(firstThen(a.wsUrl, b.wsUrl)));
      await Promise.all(clients.map((c) => connect(c)));
      const losses = clients.map((c) => once(c, "disconnected", { timeoutMs: 10000 }));
      const backOnB = clients.map((c) => once(c, "connected", { timeoutMs: 15000, filter: (e) => e.url === b.wsUrl }));
      await a.drain();
      const lost = await Promise.all(losses);
      await Promise.all(backOnB);
      assert.ok(lost.every((e) => e.code === 1001 && e.reconnect), JSON.stringify(lost));
      const delays = lost.map((e) => e.delayMs);
      assert.ok(delays.every((d) => d >= 0 && d <= 2000), "inside 0..2000 ms: " + delays);
      // 20 uniform draws: both halves of the window get some, and they do not bunch together.
      const low = delays.filter((d) => d < 1000).length;
      assert.ok(low >= 2 && low <= 18, "both halves of the window are used: " + delays);
      assert.ok(Math.max(...delays) - Math.min(...delays) > 700, "spread: " + delays);
      assert.equal(new Set(delays).size, 20, "no two clients chose the same delay");
      for (const c of clients) assert.deepEqual(c.errors.map(String), []);
    });
  });

  test("recovery across a drained relay: every message exactly once, in order", async () => {
    await withLogs(async () => {
      const redis = await startRedis();
      const config = {
        broker: { type: "redis", redis: { url: redis.url } },
        channels: [{ pattern: "room:*", history_size: 1000 }],
        "drain.window_ms": 1000,
      };
      const a = await startRelay(config);
      const b = await startRelay(config);
      const publisher = newClient(b.wsUrl);
      await connect(publisher);

      // Five subscribers on the relay that will drain; their next connection goes to the other.
      const subs = [];
      for (let i = 0; i < 5; i++) {
        const c = newClient(firstThen(a.wsUrl, b.wsUrl), { drainReconnectMaxMs: 1000 });
        await connect(c);
        const sub = await subscribed(c, "room:drain");
        const seen = { client: c, sub, ns: [], recovered: 0, gaps: [], caughtUp: 0 };
        sub.on("message", (m) => {
          seen.ns.push(m.data.n);
          if (sub.state === "subscribing") seen.caughtUp++; // delivered by the resubscribe's since
        });
        sub.on("recovered", () => seen.recovered++);
        sub.on("gap", (g) => seen.gaps.push(g));
        subs.push(seen);
      }
      const allRecovered = Promise.all(subs.map((s) => once(s.sub, "recovered", { timeoutMs: 15000 })));

      // Publish while the drain moves the subscribers, until every one of them has resumed, then a
      // few more. The 10 ms pace keeps what one subscriber misses (at most ~1 s of drain jitter)
      // far below history.max_recover (300), so recovery must succeed.
      let n = 0;
      let done = false;
      allRecovered.then(() => (done = true), () => (done = true));
      const drained = a.drain();
      let extra = 10;
      while (!done || extra-- > 0) {
        await publisher.publish("room:drain", { n: ++n });
        await new Promise((r) => setTimeout(r, 10)); // pacing the load, not waiting for anything
      }
      await allRecovered;
      await drained;
      const last = n;
      await Promise.all(subs.map((s) =>
        s.ns.at(-1) === last ? undefined : once(s.sub, "message", { timeoutMs: 10000, filter: (m) => m.data.n === last })));

      const expected = Array.from({ length: last }, (_, i) => i + 1);
      for (const s of subs) {
        assert.deepEqual(s.ns, expected, "exactly once, in order");
        assert.equal(s.recovered, 1);
        assert.deepEqual(s.gaps, []);
        assert.deepEqual(s.client.errors.map(String), []);
        assert.equal(s.sub.position.offset, last);
      }
      assert.ok(last > 20, "messages were published during the drain: " + last);
      const caughtUp = subs.map((s) => s.caughtUp);
      assert.ok(caughtUp.some((k) => k > 0), "some messages were missed and recovered: " + caughtUp);
      console.log(`${last} messages; recovered on resubscribe per subscriber: ${caughtUp}`);
    });
  });
});
