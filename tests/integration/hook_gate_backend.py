#!/usr/bin/env python3
"""A hook backend for the tests that the example apps cannot stand in for: it can hold the
answers to `message` events until told to let them go (a slow app, without sleeps or timing), it
records what arrived in arrival order, and it answers what the test scripts.

    /usr/bin/python3 hook_gate_backend.py [PORT]      (0 or nothing: any free port)

Prints `listening <port>` once ready; binds 127.0.0.1 only; standard library only; no signature
check (the tests that use it leave hook.secret empty). Imported, GateBackend runs it as a separate
process, drives its controls and stops it by PID.

The hook: a POST to any path but /control/... Each request is recorded as
{"event", "connection", "user", "channel", "id", "n", "rpc", "code", "reason", "channels", "bytes"}
(n: data.n when data is an object with an integer n; bytes: the length of the request body) and
answered with:
  - message: data.answer when data is an object carrying "answer", else the scripted answer;
  - other events: the scripted answer for the event, else {} (204 for disconnect).
Control:
  POST /control/hold       from now on, message answers wait (at most 60 s) until a release
  POST /control/release    lets every held answer go, and stops holding
  POST /control/answer     {"event": E, "answer": A}: answer E with A from now on
  GET  /control/events     the records so far, as a JSON list
  GET  /control/held       how many answers are being held right now
"""

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from relay_harness import HOST, IO_TIMEOUT, wait_until

HOLD_LIMIT_S = 60  # a held answer goes anyway after this: a forgotten release cannot hang a test

lock = threading.Lock()
records = []
scripted = {}
state = {"holding": False, "held": 0, "gate": threading.Event()}
state["gate"].set()


def record_of(ev, body_len):
    data = ev.get("data")
    n = data.get("n") if isinstance(data, dict) else None
    return {"event": ev.get("event"), "connection": ev.get("connection"),
            "user": ev.get("user"), "channel": ev.get("channel"), "id": ev.get("id"),
            "n": n if type(n) is int else None, "rpc": bool(ev.get("rpc")),
            "code": ev.get("code"), "reason": ev.get("reason"), "channels": ev.get("channels"),
            "user": ev.get("user"), "bytes": body_len, "seq": ev.get("seq"),
            # CLOCK_MONOTONIC, one clock for every process on the machine: a test compares it
            # with its own timestamps.
            "at": time.monotonic()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the relay expects of an app

    def do_GET(self):
        with lock:
            if self.path == "/control/events":
                return self.send(200, list(records))
            if self.path == "/control/held":
                return self.send(200, {"held": state["held"]})
        self.send(404, {"error": {"code": 404, "message": "not found"}})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or "0"))
        if self.path.startswith("/control/"):
            return self.control(self.path[len("/control/"):], body)
        ev = json.loads(body)
        event = ev.get("event")
        with lock:
            records.append(record_of(ev, len(body)))
            gate = state["gate"] if event == "message" and state["holding"] else None
            if gate is not None:
                state["held"] += 1
        if gate is not None:
            gate.wait(HOLD_LIMIT_S)
            with lock:
                state["held"] -= 1
        data = ev.get("data")
        if event == "message" and isinstance(data, dict) and "answer" in data:
            return self.send(200, data["answer"])
        with lock:
            answer = scripted.get(event)
        if answer is None and event == "disconnect":
            return self.send(204, None)
        self.send(200, answer if answer is not None else {})

    def control(self, what, body):
        with lock:
            if what == "hold":
                state["holding"] = True
                state["gate"] = threading.Event()
            elif what == "release":
                state["holding"] = False
                state["gate"].set()
            elif what == "answer":
                script = json.loads(body)
                scripted[script["event"]] = script["answer"]
            else:
                return self.send(404, {"error": {"code": 404, "message": "unknown control"}})
        self.send(200, {"ok": True})

    def send(self, status, answer):
        try:
            self.send_response(status)
            if answer is not None:
                out = json.dumps(answer, separators=(",", ":")).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if answer is not None:
                self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the relay gave up on this request (its timeout)

    def log_message(self, *_):
        pass


class GateBackend:
    """hook_gate_backend.py as a separate process, stopped by PID."""

    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        lines = queue.Queue()
        self.reader = threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout],
                                       daemon=True)
        self.reader.start()
        first = lines.get(timeout=IO_TIMEOUT)
        if not first.startswith("listening "):
            raise AssertionError(f"backend said {first!r}")
        self.port = int(first.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=IO_TIMEOUT)
        self.reader.join(timeout=IO_TIMEOUT)
        self.proc.stdout.close()

    def url(self):
        return f"http://{HOST}:{self.port}/ws-hook"

    def _call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{HOST}:{self.port}{path}", data=data,
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return json.loads(r.read())

    async def hold(self):
        await asyncio.to_thread(self._call, "/control/hold", {})

    async def release(self):
        await asyncio.to_thread(self._call, "/control/release", {})

    async def script(self, event, answer):
        await asyncio.to_thread(self._call, "/control/answer", {"event": event, "answer": answer})

    async def events(self, connection=None):
        got = await asyncio.to_thread(self._call, "/control/events")
        return [e for e in got if connection is None or e["connection"] == connection]

    async def held(self):
        return (await asyncio.to_thread(self._call, "/control/held"))["held"]

    async def wait_events(self, predicate, what, timeout=IO_TIMEOUT):
        async def check():
            got = await self.events()
            return got if predicate(got) else None
        return await wait_until(check, timeout, what)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    sys.stdout.write(f"listening {server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
