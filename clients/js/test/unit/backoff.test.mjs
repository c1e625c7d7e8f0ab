// Reconnect delays: exponential backoff with full jitter, its bounds, its spread, and its reset
// after a stable connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeSocket, connected, flush, makeClient } from "./fakes.mjs";

/** Fails `n` connection attempts in a row (each socket closes with 1006 before it opens) and
 *  returns the delays the client chose. */
async function failAttempts(clock, of, n) {
  for (let i = 0; i < n; i++) {
    FakeSocket.last.serverClose(1006);
    const delay = of("reconnecting").at(-1).delayMs;
    clock.advance(delay);
    await flush();
  }
  return of("reconnecting").map((e) => e.delayMs);
}

test("with random() = 1 the delays are the caps: min x factor^attempt, up to max", async () => {
  const { client, clock, of } = makeClient({ random: () => 1 });
  client.connect();
  const delays = await failAttempts(clock, of, 9);
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.deepEqual(of("reconnecting").map((e) => e.attempt), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(FakeSocket.all.length, 10, "one new socket per attempt");
  client.disconnect();
});

test("with random() = 0 the delay is 0: the jitter is full, down to zero", async () => {
  const { client, clock, of } = makeClient({ random: () => 0 });
  client.connect();
  assert.deepEqual(await failAttempts(clock, of, 4), [0, 0, 0, 0]);
  client.disconnect();
});

test("min, max and factor are options", async () => {
  const { client, clock, of } = makeClient({ minReconnectDelayMs: 100, maxReconnectDelayMs: 1000, reconnectFactor: 3 });
  client.connect();
  assert.deepEqual(await failAttempts(clock, of, 5), [100, 300, 900, 1000, 1000]);
  client.disconnect();
});

test("jitter spreads the delays of many clients over the whole window", async () => {
  const delays = [];
  for (let i = 0; i < 200; i++) {
    const { client, clock, of } = makeClient({ random: Math.random });
    client.connect();
    // The fourth failure in a row: its window is 0 .. 4000 ms.
    delays.push((await failAttempts(clock, of, 4))[3]);
    client.disconnect();
  }
  assert.ok(delays.every((d) => d >= 0 && d <= 4000), "inside the window");
  const quarters = [0, 0, 0, 0];
  for (const d of delays) quarters[Math.min(3, Math.floor(d / 1000))]++;
  // 200 uniform draws: each quarter expects 50; below 20 would be a 1-in-10^7 event.
  assert.ok(quarters.every((q) => q >= 20), "every quarter of the window is used: " + quarters);
});

test("a connection that stays up stableAfterMs resets the backoff; a shorter one does not", async () => {
  const { client, clock, of } = makeClient({ stableAfterMs: 10000 });
  client.connect();
  await failAttempts(clock, of, 3); // 500, 1000, 2000
  FakeSocket.last.open();
  clock.advance(9999);
  FakeSocket.last.serverClose(1006);
  assert.equal(of("reconnecting").at(-1).delayMs, 4000, "not yet stable: the backoff goes on");
  clock.advance(4000);
  await flush();
  FakeSocket.last.open();
  clock.advance(10000);
  FakeSocket.last.serverClose(1006);
  assert.equal(of("reconnecting").at(-1).delayMs, 500, "stable: back to the minimum");
  client.disconnect();
});

test("the defaults are 500 ms doubling up to 30 s", async () => {
  const { client, clock, of } = makeClient({});
  const sock = await connected(client);
  sock.serverClose(1011);
  assert.equal(of("reconnecting")[0].delayMs, 500);
  clock.advance(500);
  await flush();
  assert.equal(FakeSocket.all.length, 2, "the reconnect happens when the delay is over");
  client.disconnect();
  assert.equal(clock.pending, 0, "disconnect() leaves no timer behind");
});
