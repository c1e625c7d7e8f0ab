// The chat page: wsrelay-client in a browser. The app (docs/examples/hook-node/server.js with DEMO=1)
// serves this file, the built client and /config, issues tokens and sees every step through its hook.
// Query string: ?relay=N starts on the N-th relay of /config; later attempts go round the list.
// window.__chat keeps what happened (states, messages, notices) for the browser test to read.
import { Client } from "/wsrelay-client.min.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const config = await (await fetch("/config")).json();

const chat = (window.__chat = {
  user: null,
  states: [],           // every client state, in order
  urls: [],             // the relay each attempt went to
  reconnectLines: [],   // the "reconnecting in N s" texts shown
  delivered: {},        // room -> every message event as the client delivered it
  subscribed: {},       // room -> how many subscribe acks (one per connection)
  recovered: {},        // room -> how many reconnects recovered what was missed
  gaps: [],             // { room, reason }: the room was reloaded from the history
  acked: [],            // texts whose publish the relay acked
  failed: [],           // { text, code, reason }: publishes that did not go through
  errors: [],           // client "error" events
});

// Each room: its messages by offset (what is shown) and, for a channel without history, in order.
const rooms = new Map(config.rooms.map((name) => [name, { byOffset: new Map(), plain: [], unread: 0 }]));
let current = config.rooms[0];
let client = null;

// One relay per attempt: a drained relay is not tried again right away.
let next = Number(params.get("relay") ?? Math.floor(Math.random() * config.relays.length));
function relayUrl() {
  const url = config.relays[next % config.relays.length];
  next += 1;
  chat.urls.push(url);
  return url;
}

async function getToken() {
  const res = await fetch("/token", { method: "POST", body: JSON.stringify({ user: chat.user }) });
  if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
  chat.token = (await res.json()).token;
  return chat.token;
}

// ---- connection state ----

let countdown = null;
function showReconnect(delayMs) {
  clearInterval(countdown);
  const until = Date.now() + delayMs;
  const line = $("reconnect");
  const tick = () => {
    const left = Math.max(0, until - Date.now());
    line.textContent = left > 0 ? `reconnecting in ${(left / 1000).toFixed(1)} s` : "reconnecting…";
    if (left === 0) clearInterval(countdown);
  };
  tick();
  chat.reconnectLines.push(line.textContent);
  line.hidden = false;
  countdown = setInterval(tick, 100);
}

function showState(state) {
  chat.states.push(state);
  $("status").dataset.state = state;
  $("state-text").textContent = state;
  if (state === "connected") {
    clearInterval(countdown);
    $("reconnect").hidden = true;
  }
}

function notice(text) {
  $("notice").textContent = text;
}

// ---- messages ----

function addMessage(room, msg) {
  const r = rooms.get(room);
  if (msg.offset === undefined) r.plain.push(msg);
  else r.byOffset.set(msg.offset, msg);
  if (room === current) appendItem(msg);
  else {
    r.unread += 1;
    renderRooms();
  }
}

function item(msg) {
  const li = document.createElement("li");
  const data = msg.data && typeof msg.data === "object" ? msg.data : { text: String(msg.data) };
  if (data.system) {
    li.className = "system";
    li.textContent = data.text;
  } else {
    li.className = data.from === chat.user ? "mine" : "";
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = data.from ?? "?";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = data.text;
    li.append(from, text);
  }
  if (msg.offset !== undefined) li.dataset.offset = msg.offset;
  return li;
}

function appendItem(msg) {
  const list = $("messages");
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(item(msg));
  if (stick) list.scrollTop = list.scrollHeight;
}

function renderRoom() {
  const r = rooms.get(current);
  $("room-title").textContent = current;
  const sorted = [...r.byOffset.values()].sort((a, b) => a.offset - b.offset);
  $("messages").replaceChildren(...sorted.concat(r.plain).map(item));
  $("messages").scrollTop = $("messages").scrollHeight;
}

function renderRooms() {
  $("rooms").replaceChildren(...config.rooms.map((name) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name.replace(/^chat:/, "#");
    b.setAttribute("aria-current", String(name === current));
    const unread = rooms.get(name).unread;
    if (unread) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = unread;
      b.append(badge);
    }
    b.onclick = () => {
      current = name;
      rooms.get(name).unread = 0;
      renderRooms();
      renderRoom();
    };
    return b;
  }));
}

// A gap: the relay could not replay what this page missed, so reload the room from the history
// (a real app reloads from its own backend). Merging by offset keeps live messages that overtook it.
async function reload(room, reason) {
  chat.gaps.push({ room, reason });
  try {
    const h = await client.history(room, { limit: 100 });
    for (const m of h.messages) rooms.get(room).byOffset.set(m.offset, { data: m.data, offset: m.offset, epoch: h.epoch });
    if (room === current) renderRoom();
    notice(`${room}: reloaded after a gap (${reason})`);
  } catch (e) {
    notice(`${room}: could not reload (${e.message})`);
  }
}

// ---- wiring ----

function start(user) {
  chat.user = user;
  $("who").textContent = `signed in as ${user}`;
  client = new Client(relayUrl, { getToken });
  client.on("state", showState);
  let connections = 0;
  client.on("connected", ({ url }) => {
    $("relay-url").textContent = url;
    connections += 1;
    notice(connections > 1 ? `reconnected to ${url}` : "");
  });
  client.on("reconnecting", ({ delayMs }) => showReconnect(delayMs));
  client.on("disconnected", ({ code, reason }) => notice(`connection lost (${code}${reason ? ` ${reason}` : ""})`));
  client.on("closed", ({ code, reason }) => notice(`stopped: ${code} ${reason}`));
  client.on("error", (e) => {
    chat.errors.push(`${e.kind}: ${e.message}`);
    console.warn("wsrelay-client", e);
  });
  // The app's connect answer subscribes every connection to "lobby"; this page does not show it.
  client.on("subscribed", (sub) => {
    if (!rooms.has(sub.channel)) sub.unsubscribe();
  });

  for (const room of config.rooms) {
    chat.delivered[room] = [];
    let missed = 0; // messages since the connection opened: a recovery delivers them before its ack
    client.on("connected", () => {
      missed = 0;
    });
    const sub = client.subscribe(room);
    sub.on("message", (msg) => {
      chat.delivered[room].push({ offset: msg.offset, epoch: msg.epoch, data: msg.data });
      missed += 1;
      addMessage(room, msg);
    });
    chat.subscribed[room] = 0;
    chat.recovered[room] = 0;
    sub.on("subscribed", () => {
      chat.subscribed[room] += 1;
    });
    sub.on("recovered", () => {
      chat.recovered[room] += 1;
      if (missed) notice(`${room}: ${missed} missed message${missed === 1 ? "" : "s"} recovered`);
    });
    sub.on("gap", ({ reason }) => reload(room, reason));
    sub.on("error", (e) => notice(`${room}: ${e.reason || e.message} (${e.code})`));
  }

  // Announce the user once per visit (not at every reconnect), once the lobby is live for this page.
  const lobby = client.getSubscription(config.rooms[0]);
  const announce = () => {
    lobby.off("subscribed", announce);
    fetch("/join", { method: "POST", body: JSON.stringify({ token: chat.token }) });
  };
  lobby.on("subscribed", announce);
  addEventListener("pagehide", () => navigator.sendBeacon("/leave", JSON.stringify({ token: chat.token })));

  $("join").hidden = true;
  $("chat").hidden = false;
  renderRooms();
  renderRoom();
  client.connect();
  $("text").focus();
}

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  if (/^[A-Za-z0-9_-]{1,32}$/.test(name)) start(name);
});

$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  const room = current;
  // The hook publishes {from, text, seq} for it; the ack comes once the app has answered.
  client.publish(room, { text }).then(() => {
    chat.acked.push(text);
  }, (err) => {
    chat.failed.push({ text, code: err.code, reason: err.reason });
    notice(`not sent: ${err.reason || err.message}`);
    if (!input.value) input.value = text; // let the user try again
  });
});

if (params.get("name")) {
  $("name").value = params.get("name");
}
