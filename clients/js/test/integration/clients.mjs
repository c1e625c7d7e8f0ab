// What the integration tests share on top of the harness: wsrelay-client instances on the `ws`
// package (Node 18 has no global WebSocket), all disconnected at the end.
import WebSocket from "ws";
import { Client } from "../../dist/index.js";
import { once } from "../harness.mjs";

export const SECRET = "integration-secret-integration-secret";
const clients = new Set();

/** A client on `ws`, with every "error" event kept in `errors` (the tests expect none unless said). */
export function newClient(url, options = {}) {
  const client = new Client(url, { WebSocket, ...options });
  client.errors = [];
  client.on("error", (e) => client.errors.push(e));
  clients.add(client);
  return client;
}

/** Connects and resolves once connected. */
export async function connect(client, timeoutMs = 10000) {
  const up = once(client, "connected", { timeoutMs, what: "client connected" });
  client.connect();
  return up;
}

/** Subscribes and resolves with the subscription once the relay confirmed it. */
export async function subscribed(client, channel, options, timeoutMs = 10000) {
  const sub = client.subscribe(channel, options);
  await once(sub, "subscribed", { timeoutMs, what: `subscribed to ${channel}` });
  return sub;
}

export function disconnectAll() {
  for (const c of clients) c.disconnect();
  clients.clear();
}

/** Settles a promise into {value} or {error}. */
export const outcome = (p) => p.then((value) => ({ value }), (error) => ({ error }));
