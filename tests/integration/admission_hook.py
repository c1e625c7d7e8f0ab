"""A hook backend for the admission tests: a separate process (Python stdlib only) that answers
every connect event by a fixed policy and records every event it gets.

    admission_hook.py allow|deny [DENY_MESSAGE]

Prints "listening PORT" once ready. POST /hook takes events; GET /events returns the events seen
so far as a JSON list. Signatures are not checked (the relay is started without hook.secret).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLICY = sys.argv[1] if len(sys.argv) > 1 else "allow"
DENY_MESSAGE = sys.argv[2] if len(sys.argv) > 2 else "denied by the test backend"
EVENTS = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with LOCK:
            self.answer(200, list(EVENTS))

    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with LOCK:
            EVENTS.append(event)
        if event.get("event") == "connect" and POLICY == "deny":
            self.answer(200, {"deny": {"message": DENY_MESSAGE}})
        else:
            self.answer(200, {})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
