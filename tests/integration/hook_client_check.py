"""Checks the example hook backends (docs/examples/hook-*) against docs/hook.md, without a relay.

    /usr/bin/python3 tests/integration/hook_client_check.py node|python

Starts the chosen server on a free port with a fresh HOOK_SECRET, plays the relay's part by POSTing
signed events, and checks every rule of the example app: signatures, connect, subscribe, chat
messages, rpc commands, disconnect and /stats, and the order-violation report. Prints one PASS or
FAIL line per check and exits 1 if any failed. Named *_check.py, not test_*.py, so that CTest and
pytest leave it alone: it is run by hand.
"""

import hashlib
import hmac
import http.client
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = {
    "node": lambda: [shutil.which("node") or "/usr/bin/node",
                     os.path.join(ROOT, "docs/examples/hook-node/server.js"), "0"],
    "python": lambda: [sys.executable, os.path.join(ROOT, "docs/examples/hook-python/server.py"), "0"],
}
SECRET = "check-" + os.urandom(8).hex()
STATUS_LINE = re.compile(r"^(\S+) (\S+) (ok|denied|badsig)$")


class Server:
    def __init__(self, kind):
        env = dict(os.environ, HOOK_SECRET=SECRET)
        self.proc = subprocess.Popen(SERVERS[kind](), stdout=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.seen = []  # every line, for the order-violation checks
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_line(10)
        if not first or not first.startswith("listening "):
            raise SystemExit(f"server did not start: {first!r}")
        self.port = int(first.split()[1])

    def _read(self):
        for line in self.proc.stdout:
            self.seen.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout=5):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_line(self, wanted, timeout=5):
        """Returns the first status line matching `wanted` (skipping others), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next_line(deadline - time.monotonic())
            if line == wanted:
                return line
        return None

    def stop(self):
        self.proc.terminate()  # our own child, by its handle
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sign(body, secret=SECRET, t=None):
    t = str(int(time.time()) if t is None else t)
    mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Relay:
    """Plays the relay: one keep-alive connection, like the relay's pool."""

    def __init__(self, port):
        self.port = port
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(self, event, signature="sign", raw=None, via=None, event_header=None):
        body = raw if raw is not None else json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        event_header = event_header or (event or {}).get("event")
        if event_header:
            headers["X-Wsrelay-Event"] = event_header
        if signature == "sign":
            signature = sign(body)
        if signature is not None:
            headers["X-Wsrelay-Signature"] = signature
        h = via or self.http
        h.request("POST", "/hook", body=body, headers=headers)
        resp = h.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)

    def get(self, path):
        self.http.request("GET", path)
        resp = self.http.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"), flush=True)
        self.failures += 0 if ok else 1

    def equal(self, name, got, want):
        self.check(name, got == want, f"got {got!r}, want {want!r}")


def run(kind):
    server = Server(kind)
    relay = Relay(server.port)
    c = Checker()
    sent_messages = 0

    def ev(event, conn, user=None, **fields):
        return dict(event=event, connection=conn, user=user, meta=fields.pop("meta", None), **fields)

    def line(event, conn, outcome):
        c.check(f"log line '{event} {conn} {outcome}'",
                server.wait_line(f"{event} {conn} {outcome}") is not None)

    try:
        relay.get("/stats")
        first_socket = relay.http.sock.getsockname()
        # -- 2. signatures
        bad = {"error": {"code": 401, "message": "bad signature"}}
        body = json.dumps(ev("connect", "sig-1")).encode()
        for name, sig in [("missing", None), ("wrong secret", sign(body, secret="nope")),
                          ("302 s old", sign(body, t=int(time.time()) - 302)),
                          ("302 s ahead", sign(body, t=int(time.time()) + 302)),
                          ("garbage", "t=abc,v1=zz"), ("no v1", f"t={int(time.time())}"),
                          ("upper-case hex", sign(body).upper().replace("T=", "t=").replace("V1=", "v1=")),
                          ("other body", sign(body + b" "))]:
            c.equal(f"signature {name} -> 401", relay.post(None, sig, raw=body, event_header="connect"),
                    (401, bad))
            line("connect", "-", "badsig")
        c.equal("signature 200 s old accepted",
                relay.post(None, sign(body, t=int(time.time()) - 200), raw=body)[0], 200)
        line("connect", "sig-1", "ok")
        c.equal("disconnect sig-1", relay.post(ev("disconnect", "sig-1", "guest-1", code=1000)),
                (204, None))
        line("disconnect", "sig-1", "ok")

        # -- 3. connect
        status, ans = relay.post(ev("connect", "c-guest", headers={"user-agent": "test"}))
        c.check("guest connect -> user guest-<n>",
                status == 200 and re.fullmatch(r"guest-\d+", ans.get("user", "")) is not None, ans)
        guest = ans.get("user")
        c.equal("guest connect subscribes lobby", ans.get("subscribe"), ["lobby"])
        meta = ans.get("meta") or {}
        c.check("guest connect meta.joined_at is now (ms)",
                isinstance(meta.get("joined_at"), int) and abs(meta["joined_at"] - time.time() * 1000) < 5000,
                meta)
        c.equal("guest connect meta.name", meta.get("name"), guest)
        line("connect", "c-guest", "ok")
        c.equal("connect retry answers the same", relay.post(ev("connect", "c-guest")), (200, ans))
        _, other = relay.post(ev("connect", "c-guest2"))
        c.check("next guest gets another name", other.get("user") not in (None, guest), other)

        status, ans = relay.post(ev("connect", "c-alice", "alice",
                                    headers={"cookie": "s=1", "x-forwarded-for": "10.0.0.1"}))
        c.check("JWT user keeps its name (no 'user' in answer)", status == 200 and "user" not in ans, ans)
        c.equal("alice meta.name", ans.get("meta", {}).get("name"), "alice")
        c.equal("alice subscribes lobby", ans.get("subscribe"), ["lobby"])
        alice_meta = ans["meta"]
        denied = (200, {"deny": {"code": 403, "message": "banned"}})
        c.equal("user banned -> deny", relay.post(ev("connect", "c-ban1", "banned")), denied)
        line("connect", "c-ban1", "denied")
        c.equal("user-agent banned-agent -> deny", relay.post(
            ev("connect", "c-ban2", headers={"user-agent": "Mozilla banned-agent/1"})), denied)
        c.equal("x-forwarded-for banned-agent -> deny", relay.post(
            ev("connect", "c-ban3", "bob", headers={"x-forwarded-for": "banned-agent"})), denied)
        raw = {"event": "connect", "connection": "c-bare", "user": None}  # no meta, no headers
        c.equal("connect without headers/meta fields -> ok", relay.post(raw)[0], 200)

        # -- 4. subscribe
        c.equal("subscribe room:1 -> ok", relay.post(ev("subscribe", "c-alice", "alice", channel="room:1")),
                (200, {}))
        line("subscribe", "c-alice", "ok")
        c.equal("subscribe own private channel -> ok",
                relay.post(ev("subscribe", "c-alice", "alice", channel="private:alice")), (200, {}))
        priv = (200, {"deny": {"code": 403, "message": "private channel"}})
        c.equal("subscribe someone else's private channel -> deny",
                relay.post(ev("subscribe", "c-alice", "alice", channel="private:bob")), priv)
        line("subscribe", "c-alice", "denied")
        c.equal("subscribe private:null without user -> deny",
                relay.post(ev("subscribe", "c-bare", None, channel="private:null")), priv)

        # -- 5. chat messages
        def chat(conn, user, meta, data, channel="chat:room1", **kw):
            nonlocal sent_messages
            sent_messages += 1
            return relay.post(ev("message", conn, user, meta=meta, channel=channel, data=data), **kw)

        def published(frm, text, seq, channel="chat:room1"):
            return (200, {"publish": [{"channel": channel,
                                       "data": {"from": frm, "text": text, "seq": seq}}]})

        c.equal("chat publish seq 1", chat("c-alice", "alice", alice_meta, {"text": "hi"}),
                published("alice", "hi", 1))
        line("message", "c-alice", "ok")
        c.equal("chat publish seq 2, same channel", chat("c-alice", "alice", alice_meta, {"text": "yo"},
                                                          channel="chat:room2"),
                published("alice", "yo", 2, "chat:room2"))
        status, ans = chat("c-alice", "alice", alice_meta, {"text": "/nick Al"})
        c.equal("/nick -> meta with new name, other fields kept", ans.get("meta"),
                {**alice_meta, "name": "Al"})
        c.equal("/nick -> reply ok", ans.get("reply"), {"ok": True})
        c.check("/nick publishes nothing", "publish" not in ans, ans)
        alice_meta = ans["meta"]
        c.equal("after /nick 'from' is the nick (seq not used by /nick)",
                chat("c-alice", "alice", alice_meta, {"text": "again"}), published("Al", "again", 3))
        c.equal("guest without meta name -> from user", chat("c-guest", guest, None, {"text": "x"}),
                published(guest, "x", 1))
        c.equal("empty text -> error 400", chat("c-alice", "alice", alice_meta, {"text": ""}),
                (200, {"error": {"code": 400, "message": "empty message"}}))
        for name, data in [("string data", "hi"), ("no text", {"t": 1}), ("number text", {"text": 5}),
                           ("null data", None), ("array data", ["hi"])]:
            status, ans = chat("c-alice", "alice", alice_meta, data)
            c.check(f"{name} -> error 400", status == 200 and ans.get("error", {}).get("code") == 400, ans)
        c.equal("crash -> HTTP 500", chat("c-alice", "alice", alice_meta, {"text": "crash"})[0], 500)
        line("message", "c-alice", "ok")

        # slow: 3 s, and other connections' requests are not held up meanwhile
        slow_result = {}

        def slow():
            h = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            t0 = time.monotonic()
            slow_result["answer"] = chat("c-guest", guest, None, {"text": "slow"}, via=h)
            slow_result["took"] = time.monotonic() - t0
            h.close()

        worker = threading.Thread(target=slow)
        worker.start()
        time.sleep(0.3)  # let the slow request arrive first; the check below is about overlap
        t0 = time.monotonic()
        fast = chat("c-alice", "alice", alice_meta, {"text": "fast"})
        fast_took = time.monotonic() - t0
        worker.join(10)
        c.check("slow takes ~3 s", 2.9 <= slow_result.get("took", 0) < 5, slow_result)
        c.equal("slow still publishes", slow_result.get("answer"), published(guest, "slow", 2))
        c.check("another request is answered during slow", fast_took < 1.0 and fast[0] == 200,
                (fast_took, fast))

        # -- 6. rpc
        def rpc(conn, user, meta, data):
            nonlocal sent_messages
            sent_messages += 1
            return relay.post(ev("message", conn, user, meta=meta, data=data, rpc=True, id=7))

        c.equal("whoami", rpc("c-alice", "alice", alice_meta, {"cmd": "whoami"}),
                (200, {"reply": {"user": "alice", "meta": alice_meta}}))
        c.equal("echo", rpc("c-alice", "alice", alice_meta, {"cmd": "echo", "value": {"a": [1, "b"]}}),
                (200, {"reply": {"a": [1, "b"]}}))
        c.equal("echo without value -> reply null", rpc("c-alice", "alice", alice_meta, {"cmd": "echo"}),
                (200, {"reply": None}))
        c.equal("kick", rpc("c-guest", guest, None, {"cmd": "kick"}),
                (200, {"reply": {"bye": True}, "disconnect": {"code": 4000, "reason": "kicked"}}))
        unknown = (200, {"error": {"code": 404, "message": "unknown command"}})
        c.equal("unknown cmd -> 404", rpc("c-alice", "alice", alice_meta, {"cmd": "nope"}), unknown)
        c.equal("non-object rpc data -> 404", rpc("c-alice", "alice", alice_meta, "whoami"), unknown)

        # -- 8. order check
        for n in (1, 2, 3):
            chat("c-order", "alice", None, {"text": f"m{n}", "n": n})
        chat("c-order", "alice", None, {"text": "gap", "n": 5})
        chat("c-order", "alice", None, {"text": "after gap", "n": 6})
        chat("c-order2", "alice", None, {"text": "own counter", "n": 1})
        chat("c-order2", "alice", None, {"text": "repeat", "n": 1})
        relay.post(ev("disconnect", "c-order2", "alice"))
        line("disconnect", "c-order2", "ok")  # every line before it has been printed
        violations = [l for l in server.seen if l.startswith("order-violation")]
        c.equal("order-violation lines", violations,
                ["order-violation c-order 4 5", "order-violation c-order2 2 1"])

        # -- 7. disconnect and /stats
        for conn, user in [("c-guest", guest), ("c-guest2", other["user"]), ("c-alice", "alice"),
                           ("c-bare", None)]:
            c.equal(f"disconnect {conn} -> 204", relay.post(ev("disconnect", conn, user, code=1000,
                                                               reason="bye")), (204, None))
        c.equal("disconnect retry -> 204", relay.post(ev("disconnect", "c-alice", "alice")), (204, None))
        c.equal("disconnect of a denied connect -> 204", relay.post(ev("disconnect", "c-ban1", "banned")),
                (204, None))
        line("disconnect", "c-ban1", "ok")
        connects = 1 + 2 + 1 + 1  # sig-1, c-guest, c-guest2, c-alice, c-bare (denied ones not counted)
        c.equal("GET /stats", relay.get("/stats"),
                (200, {"connects": connects, "disconnects": connects, "messages": sent_messages}))
        status, alice = relay.get("/stats?user=alice")
        c.check("GET /stats?user=alice", status == 200 and alice["connects"] == 1 == alice["disconnects"]
                and alice["messages"] > 10, alice)
        c.equal("GET /stats?user=nobody", relay.get("/stats?user=nobody"),
                (200, {"connects": 0, "disconnects": 0, "messages": 0}))
        c.equal("GET /other -> 404", relay.get("/other")[0], 404)

        # -- robustness: signed garbage costs a 400, the server lives on
        for name, raw in [("not JSON", b"{nope"), ("JSON array", b"[1]"), ("no connection", b'{"event":"connect"}'),
                          ("unknown event", b'{"event":"explode","connection":"x"}')]:
            status, ans = relay.post(None, sign(raw), raw=raw)
            c.check(f"signed {name} -> 400", status in (200, 400) and ans.get("error", {}).get("code") == 400,
                    (status, ans))
        c.equal("still alive", relay.get("/stats")[0], 200)
        c.equal("keep-alive: every request above used one TCP connection",
                relay.http.sock and relay.http.sock.getsockname(), first_socket)
        c.check("no stray output", all(STATUS_LINE.match(l) or l.startswith(("order-violation", "listening"))
                                       for l in server.seen), server.seen)
    finally:
        server.stop()
    print(f"{kind}: {'all checks passed' if c.failures == 0 else f'{c.failures} check(s) FAILED'}")
    return c.failures


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SERVERS:
        raise SystemExit("usage: hook_client_check.py node|python")
    sys.exit(1 if run(sys.argv[1]) else 0)
