"""A tiny JWKS HTTP server for the auth tests, run as a separate process.

    /usr/bin/python3 jwks_server.py --file JWKS [--port N] [--status-file PATH]
                                    [--tls-cert PEM --tls-key PEM]

Listens on 127.0.0.1 (port 0 = any free one), prints `listening <port>`, then one line per request:
`request <path> <status>`. GET /jwks.json answers the file's current content (re-read on every
request, so a test rotates keys by rewriting it); while the status file exists and holds a number,
it answers that status instead (a failing identity provider). Redirects, 302: GET /redirect/N to
/redirect/N-1, and /redirect/1 to /jwks.json (N hops in all); GET /to?url=U to U, any URL.
Anything else is 404. With --tls-cert and --tls-key it speaks https with that certificate.

Imported, JwksServer runs that process and follows its output.
"""

import argparse
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from relay_harness import end_process

HOST = "127.0.0.1"
JWKS_PATH = "/jwks.json"


def _serve(args):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body, location = 404, b"not found", None
            url = urllib.parse.urlsplit(self.path)
            if self.path == JWKS_PATH:
                status, body = self._jwks()
            elif url.path.startswith("/redirect/") and url.path[10:].isdigit():
                hops = int(url.path[10:])
                if hops >= 1:
                    status, body = 302, b""
                    location = JWKS_PATH if hops == 1 else f"/redirect/{hops - 1}"
            elif url.path == "/to":
                target = urllib.parse.parse_qs(url.query).get("url")
                if target:
                    status, body, location = 302, b"", target[0]
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            print(f"request {self.path} {status}", flush=True)

        def _jwks(self):
            try:
                with open(args.status_file) as f:
                    forced = int(f.read().strip() or "500")
                return forced, b'{"error":"forced by the test"}'
            except (OSError, ValueError):
                pass
            try:
                with open(args.file, "rb") as f:
                    return 200, f.read()
            except OSError:
                return 404, b"no jwks file"

        def log_message(self, *_):
            pass  # the one line per request above is the log

    server = ThreadingHTTPServer((HOST, args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


class JwksServer:
    """The server above as a child process, stopped by PID. Its request lines are collected by a
    thread; wait_requests() waits for them instead of polling."""

    def __init__(self, jwks_file, port=0, status_file=None, tls=None):
        self.jwks_file = jwks_file
        self.tls = tls  # (certificate, key) files: https
        self.status_file = status_file or jwks_file + ".status"
        self.port = port
        self.proc = None
        self.requests = []  # (path, status)
        self._cond = threading.Condition()
        self._reader = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}{JWKS_PATH}"

    def redirect_url(self, hops):
        """A URL that reaches /jwks.json after `hops` redirects."""
        return f"http://{HOST}:{self.port}/redirect/{hops}"

    def redirect_to(self, target):
        """A URL that redirects once, to `target`."""
        return f"http://{HOST}:{self.port}/to?url={urllib.parse.quote(target, safe='')}"

    def start(self, timeout=10.0):
        script = os.path.abspath(__file__)
        self.proc = subprocess.Popen(
            [sys.executable, script, "--file", self.jwks_file, "--port", str(self.port),
             "--status-file", self.status_file]
            + (["--tls-cert", self.tls[0], "--tls-key", self.tls[1]] if self.tls else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        port = []
        self._reader = threading.Thread(target=self._read, args=(port,), daemon=True)
        self._reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: port or self.proc.poll() is not None, timeout):
                self.stop()
                raise AssertionError(f"jwks_server.py did not start within {timeout}s")
        if not port:
            err = self.proc.stderr.read().decode(errors="replace")
            self.stop()
            raise AssertionError(f"jwks_server.py exited at start: {err}")
        self.port = port[0]
        return self

    def _read(self, port):
        for raw in iter(self.proc.stdout.readline, b""):
            words = raw.decode(errors="replace").split()
            with self._cond:
                if words[:1] == ["listening"]:
                    port.append(int(words[1]))
                elif words[:1] == ["request"] and len(words) == 3:
                    self.requests.append((words[1], int(words[2])))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def count(self, status=None):
        with self._cond:
            return sum(1 for path, s in self.requests
                       if path == JWKS_PATH and (status is None or s == status))

    def wait_requests(self, count, status=None, timeout=10.0):
        """Waits until `count` JWKS requests (answered with `status`, if given) have been served in
        all; returns that count."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                n = sum(1 for path, s in self.requests
                        if path == JWKS_PATH and (status is None or s == status))
                if n >= count:
                    return n
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"{n} JWKS requests (status {status}) after {timeout}s, "
                                         f"expected {count}; all: {self.requests}")
                self._cond.wait(remaining)

    def fail_with(self, status):
        """From now on /jwks.json answers `status` (None: serve the file again)."""
        if status is None:
            try:
                os.unlink(self.status_file)
            except FileNotFoundError:
                pass
        else:
            with open(self.status_file, "w") as f:
                f.write(str(status))

    def stop(self):
        if self.proc is not None:
            end_process(self.proc)
            if self._reader:
                self._reader.join(timeout=10)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status-file", default=None)
    parser.add_argument("--tls-cert", default=None)
    parser.add_argument("--tls-key", default=None)
    args = parser.parse_args()
    if args.status_file is None:
        args.status_file = args.file + ".status"
    _serve(args)


if __name__ == "__main__":
    main()
