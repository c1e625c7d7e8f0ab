// Bad input from the relay, and listeners that throw: reported as "error" events, never thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientError } from "../../dist/index.js";
import { connected, makeClient } from "./fakes.mjs";

const bad = [
  ["a non-JSON frame", "not json {"],
  ["a JSON value that is not an object", "[1,2]"],
  ["a frame without op", { channel: "x" }],
  ["an unknown op", { op: "surprise" }],
  ["an answer to an id never sent", { op: "ack", id: 999 }],
  ["a pong nobody asked for", { op: "pong" }],
  ["an error frame without id", { op: "error", code: 400, reason: "malformed JSON" }],
  ["a subscribed frame without channel", { op: "subscribed" }],
];

for (const [what, frame] of bad) {
  test(`${what}: an error event of kind 'protocol', then business as usual`, async () => {
    const { client, of } = makeClient();
    const sock = await connected(client);
    assert.doesNotThrow(() => sock.recv(frame));
    const [err] = of("error");
    assert.ok(err instanceof ClientError);
    assert.equal(err.kind, "protocol");
    const p = client.publish("room:1", 1);
    sock.recv({ op: "ack", id: sock.lastOf("publish").id });
    await p;
    assert.equal(client.state, "connected");
    client.disconnect();
  });
}

test("a binary frame: an error event", async () => {
  const { client, of } = makeClient();
  const sock = await connected(client);
  sock.onmessage({ data: new ArrayBuffer(4) });
  assert.match(of("error")[0].message, /binary/);
  client.disconnect();
});

test("messages for channels not subscribed and unknown frame fields are ignored quietly", async () => {
  const { client, of } = makeClient();
  const sock = await connected(client);
  sock.recv({ op: "message", channel: "elsewhere", data: 1 });
  const p = client.publish("room:1", 1);
  sock.recv({ op: "ack", id: sock.lastOf("publish").id, future: { field: true } });
  await p;
  assert.deepEqual(of("error"), []);
  client.disconnect();
});

test("a listener that throws: an error event of kind 'listener' with the exception as cause", async () => {
  const { client, of } = makeClient();
  const boom = new Error("app bug");
  client.on("connected", () => {
    throw boom;
  });
  const sub = client.subscribe("room:1");
  sub.on("message", () => {
    throw boom;
  });
  const sock = await connected(client);
  sock.recv({ op: "ack", id: sock.lastOf("subscribe").id });
  assert.doesNotThrow(() => sock.recv({ op: "message", channel: "room:1", data: 1 }));
  const errors = of("error");
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e.kind === "listener" && e.cause === boom));
  client.disconnect();
});

test("an error listener that throws is dropped, not looped", async () => {
  const { client } = makeClient();
  let calls = 0;
  client.on("error", () => {
    calls++;
    throw new Error("error listener bug");
  });
  const sock = await connected(client);
  assert.doesNotThrow(() => sock.recv("garbage"));
  assert.equal(calls, 1);
  client.disconnect();
});

test("off() removes a listener, also during an emit", async () => {
  const { client } = makeClient();
  const seen = [];
  const a = () => {
    seen.push("a");
    client.off("connected", b);
  };
  const b = () => seen.push("b");
  client.on("connected", a).on("connected", b);
  await connected(client);
  client.disconnect();
  await connected(client);
  assert.deepEqual(seen, ["a", "b", "a"]);
  client.disconnect();
});
