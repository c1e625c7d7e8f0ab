"""A minimal app behind the relay's HTTP hook (docs/hook.md), for the tests of grants the app
makes: standard library only, run as a separate process.

    /usr/bin/python3 grant_hook.py [--port N] [--connect-subscribe CHANNEL]...

Listens on 127.0.0.1 (port 0 = any free one) and prints `listening <port>`, then `<event>
<connection>` per hook request. Its answers:
  connect    {"subscribe": [the --connect-subscribe channels]}
  message    an RPC (`send`) {"cmd": "grant", "channel": C}: {"subscribe": [C], "reply": {...}};
             {"cmd": "revoke", "channel": C}: {"unsubscribe": [C], "reply": {...}}
  disconnect 204
Requests are not signed (no hook.secret): this is a test double, not an example to copy.

Imported, GrantHook runs that process and stops it by PID.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


def _answer(event, connect_channels):
    name = event.get("event")
    if name == "connect":
        return 200, {"subscribe": connect_channels}
    if name == "message" and event.get("rpc"):
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        channel = data.get("channel")
        if data.get("cmd") == "grant" and isinstance(channel, str):
            return 200, {"subscribe": [channel], "reply": {"granted": channel}}
        if data.get("cmd") == "revoke" and isinstance(channel, str):
            return 200, {"unsubscribe": [channel], "reply": {"revoked": channel}}
        return 200, {"error": {"code": 404, "message": "unknown command"}}
    if name == "disconnect":
        return 204, None
    return 200, {"error": {"code": 400, "message": "not handled by this test app"}}


def _serve(args):
    out_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the relay keeps its connections to the app alive

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = json.loads(body)
                status, answer = _answer(event, args.connect_subscribe)
            except ValueError:
                event, status, answer = {}, 400, {"error": {"code": 400, "message": "bad json"}}
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            with out_lock:
                print(f"{event.get('event', '-')} {event.get('connection', '-')}", flush=True)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((HOST, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


class GrantHook:
    """The app above as a child process. start() returns once it listens."""

    def __init__(self, connect_subscribe=()):
        self.connect_subscribe = list(connect_subscribe)
        self.port = None
        self.proc = None
        self._drain = None

    def url(self):
        return f"http://{HOST}:{self.port}/hook"

    def start(self, timeout=10.0):
        command = [sys.executable, os.path.abspath(__file__)]
        for channel in self.connect_subscribe:
            command += ["--connect-subscribe", channel]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        first = []
        reader = threading.Thread(target=lambda: first.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        line = first[0] if first else ""
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"grant_hook.py did not start within {timeout}s: {line!r}")
        self.port = int(line.split()[1])
        # The per-request lines are not needed: drain them so the pipe never fills.
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self._drain is not None:
            self._drain.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--connect-subscribe", action="append", default=[])
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
