#!/usr/bin/env python3
"""A chat backend for wsrelay's HTTP hook (docs/hook.md), Python 3.11 standard library only.

    HOOK_SECRET=change-me python3 server.py [PORT]     (or PORT=...; default 3000, 0 = any free port)

Prints `listening <port>`, then `<event> <connection> <ok|denied|badsig>` per hook request.
GET /stats answers {"connects","disconnects","messages"} (add ?user=NAME for one user). It is
unauthenticated: it exists for the tests; do not expose it in a real app.
docs/examples/hook-node/server.js is the same app in Node; docs/examples/README.md explains both.
"""

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SECRET = os.environ.get("HOOK_SECRET", "").encode()
MAX_SKEW_S = 300  # a captured request can be replayed only within this window
MAX_BODY = 1 << 20

# The server answers each request on its own thread: every access to these goes through `lock`.
lock = threading.Lock()
out_lock = threading.Lock()
connections = {}  # connection id -> {"user", "seq", "last_n", "connect_answer"}
totals = {"connects": 0, "disconnects": 0, "messages": 0}
per_user = {}  # user -> the same three counters
counters = {"guest": 0}


def say(line):
    with out_lock:  # one write per line, so lines from concurrent requests never interleave
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def obj(value):
    return value if isinstance(value, dict) else {}


def is_int(value):
    return type(value) is int or (type(value) is float and value.is_integer())


def error(code, message):
    return {"error": {"code": code, "message": message}}


def count(user, field):
    totals[field] += 1
    per_user.setdefault(user or "-", {"connects": 0, "disconnects": 0, "messages": 0})[field] += 1


def signature_ok(header, body):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    parts = {k.strip(): v for k, v in parts.items()}
    t, given = parts.get("t", ""), parts.get("v1", "").encode()
    if not t.isascii() or not t.isdigit() or "v1" not in parts:
        return False
    if abs(time.time() - int(t)) > MAX_SKEW_S:
        return False
    # Sign exactly what arrived (t + raw bytes): re-encoding parsed JSON would not match.
    expected = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, given)  # constant time: no guessing byte by byte


def on_connect(ev):
    user, headers = ev.get("user"), obj(ev.get("headers"))
    client = f"{headers.get('x-forwarded-for', '')} {headers.get('user-agent', '')}"
    if user == "banned" or "banned-agent" in client:
        return {"deny": {"code": 403, "message": "banned"}}
    with lock:
        known = connections.get(ev["connection"])
        if known and known["connect_answer"]:
            # The relay retries connect after a timeout or a 5xx: answer the retry the same way.
            return known["connect_answer"]
        answer = {}
        if user is None:  # no JWT (auth off): the app names the user, the relay remembers it
            counters["guest"] += 1
            user = answer["user"] = f"guest-{counters['guest']}"
        answer["subscribe"] = ["lobby"]
        answer["meta"] = {"joined_at": int(time.time() * 1000), "name": user}
        connections[ev["connection"]] = {"user": user, "seq": 0, "last_n": 0, "connect_answer": answer}
        count(user, "connects")
    return answer


def on_subscribe(ev):
    channel, user = ev.get("channel") or "", ev.get("user")
    if channel.startswith("private:") and (user is None or channel != f"private:{user}"):
        return {"deny": {"code": 403, "message": "private channel"}}
    return {}


def on_message(ev):
    data = ev.get("data")
    with lock:
        state = connections.setdefault(ev["connection"], {"user": ev.get("user"), "seq": 0,
                                                          "last_n": 0, "connect_answer": None})
        count(ev.get("user"), "messages")
        # The relay promises one connection's events in order; tests number them to check it.
        n = obj(data).get("n")
        if is_int(n):
            if int(n) != state["last_n"] + 1:
                say(f"order-violation {ev['connection']} {state['last_n'] + 1} {int(n)}")
            state["last_n"] = int(n)
    if ev.get("rpc"):
        return on_rpc(ev, obj(data))
    if ev.get("channel"):
        return on_chat(ev, data, state)
    return error(400, "message without channel or rpc")


def on_chat(ev, data, state):
    text = obj(data).get("text")
    if not isinstance(text, str):
        return error(400, 'data must be {"text": string}')
    if text == "":
        return error(400, "empty message")
    if text == "crash":
        return 500, error(500, "crashed on purpose")
    if text == "slow":
        time.sleep(3)  # the relay's hook.timeout_ms decides what the client sees
    meta = obj(ev.get("meta"))
    if text.startswith("/nick "):
        name = text[6:].strip(" ")
        if not name:
            return error(400, "empty nick")
        # meta replaces the connection's metadata: send all of it back, not just the change.
        return {"meta": {**meta, "name": name}, "reply": {"ok": True}}
    with lock:
        state["seq"] += 1
        seq = state["seq"]
    # The hook decides what is published: the client cannot spoof "from".
    sender = meta.get("name") or ev.get("user") or None
    return {"publish": [{"channel": ev["channel"],
                         "data": {"from": sender, "text": text, "seq": seq}}]}


def on_rpc(ev, data):
    cmd = data.get("cmd")
    if cmd == "whoami":
        return {"reply": {"user": ev.get("user"), "meta": ev.get("meta")}}
    if cmd == "echo":
        return {"reply": data.get("value")}
    if cmd == "kick":  # the reply is delivered before the close
        return {"reply": {"bye": True}, "disconnect": {"code": 4000, "reason": "kicked"}}
    return error(404, "unknown command")


def on_disconnect(ev):
    with lock:
        state = connections.pop(ev["connection"], None)
        # Only connections whose connect we counted, once: a retried disconnect finds nothing.
        if state and state["connect_answer"]:
            count(state["user"], "disconnects")
    return 204, None


HANDLERS = {"connect": on_connect, "subscribe": on_subscribe,
            "message": on_message, "disconnect": on_disconnect}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the relay reuses its connections to the app

    def do_POST(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.close_connection = True
            return self.send(411, error(411, "Content-Length required"))
        length = self.headers.get("Content-Length") or "0"
        if not length.isascii() or not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            return self.send(413, error(413, "body too large"))
        body = self.rfile.read(int(length))
        event = self.headers.get("X-Wsrelay-Event", "-")
        if not signature_ok(self.headers.get("X-Wsrelay-Signature", ""), body):
            self.send(401, error(401, "bad signature"))
            return say(f"{event} - badsig")
        try:
            ev = json.loads(body)
            event, conn = ev["event"], ev["connection"]
            if not isinstance(conn, str):
                raise ValueError("no connection")
            result = HANDLERS[event](ev) if event in HANDLERS else error(400, "unknown event")
        except Exception:  # malformed input must cost one 400, never the server
            conn, result = "-", error(400, "bad request")
        status, answer = result if isinstance(result, tuple) else (200, result)
        self.send(status, answer)
        say(f"{event} {conn} {'denied' if 'deny' in obj(answer) else 'ok'}")

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/stats":
            return self.send(404, error(404, "not found"))
        user = parse_qs(url.query, keep_blank_values=True).get("user", [None])[0]
        with lock:
            stats = dict(totals if user is None else
                         per_user.get(user, {"connects": 0, "disconnects": 0, "messages": 0}))
        self.send(200, stats)

    def send(self, status, answer):
        self.send_response(status)
        if answer is not None:  # 204 has no body and must not announce one
            body = json.dumps(answer, separators=(",", ":")).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if answer is not None:
            self.wfile.write(body)

    def log_message(self, *_):
        pass  # the one line per request is the log


def main():
    if not SECRET:
        sys.exit("HOOK_SECRET is not set: refusing to accept unsigned hook requests")
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "3000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    say(f"listening {server.server_address[1]}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
