"""A real browser with a JWT: headless Chromium opens the relay with the wsrelay.v1 +
wsrelay.bearer.<token> subprotocol pair (docs/auth.md), subscribes, and shows a message published
through the HTTP API, compressed (permessage-deflate, which Chromium offers) when it is large.
browser_auth.html reports each step to the page's server, so the test waits on events, not on
time."""

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from auth_tokens import AuthTestCase, auth_config, claims, count, now, shared_keys
from relay_harness import HOST, metric

CHROMIUM = "/usr/bin/chromium"
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_auth.html")
BROWSER_TIMEOUT = 60.0  # a cold Chromium start on a busy 2-core machine takes a while
EVENT_TIMEOUT = 10.0

KEYS = shared_keys()


class PageServer:
    """Serves browser_auth.html at / and queues the events the page POSTs to /event."""

    def __init__(self):
        self.events = queue.Queue()
        with open(PAGE, "rb") as f:
            page = f.read()
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/":
                    self._answer(404, b"")
                    return
                self._answer(200, page, "text/html; charset=utf-8")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/event":
                    events.put(json.loads(body))
                self._answer(204, b"")

            def _answer(self, status, body, content_type="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, config):
        return f"http://{HOST}:{self.port}/#" + urllib.parse.quote(json.dumps(config), safe="")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


class Chromium:
    """Headless Chromium showing one URL, in a session of its own so that its helper processes
    are ended with it (by its process group id)."""

    def __init__(self, url, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="wsrelay-chromium-")
        self.log_path = os.path.join(self.dir, "chromium.log")
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", f"--user-data-dir={self.dir}/profile",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--mute-audio", *extra_args, url]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # helpers left in its group, if any
            except ProcessLookupError:
                pass
            if self.proc.poll() is None:
                self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is not installed (apt-get "
                     "install chromium)")
class BrowserAuthTest(AuthTestCase):
    def setUp(self):
        super().setUp()
        self.pages = PageServer()
        self.addCleanup(self.pages.close)
        self.browser = None

    def open_page(self, relay, token, channel):
        self.remember(token)
        self.browser = Chromium(self.pages.url({"ws": relay.ws_uri(), "token": token,
                                                "channel": channel}))
        self.addCleanup(self.browser.close)

    async def next_event(self, timeout=EVENT_TIMEOUT):
        try:
            return await asyncio.to_thread(self.pages.events.get, timeout=timeout)
        except queue.Empty:
            self.fail(f"no event from the page within {timeout}s; Chromium's output:\n"
                      f"{self.browser.log()}")

    async def test_browser_subscribes_with_the_subprotocol_token(self):
        relay = await self.start_relay(auth_config({"workers": 1}))
        token = self.tok("ES256", claims("browser-user", channels=["room:*"]))
        self.open_page(relay, token, "room:browser")

        opened = await self.next_event(BROWSER_TIMEOUT)
        self.assertEqual({"event": "open", "protocol": "wsrelay.v1",
                          "extensions": "permessage-deflate", "shown": ""}, opened)
        self.assertEqual({"op": "ack", "id": 1}, (await self.next_event())["frame"])

        data = {"text": "hello browser \u2603", "n": 42}
        await self.api_publish(relay, "room:browser", data)
        event = await self.next_event()
        self.assertEqual({"op": "message", "channel": "room:browser", "data": data},
                         event["frame"])
        self.assertEqual(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n",
                         event["shown"])

        # A large message goes compressed, once, and the browser inflates it.
        big = {"rows": [{"symbol": "AAPL", "price": i * 7 % 1000, "note": "\u2603 snow"}
                        for i in range(60)]}
        await self.api_publish(relay, "room:browser", big)
        event = await self.next_event()
        self.assertEqual({"op": "message", "channel": "room:browser", "data": big},
                         event["frame"])

        series = await relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_handshakes_total", result="ok"))
        self.assertEqual(0, count(series, "wsrelay_handshakes_total", result="auth"))
        self.assertEqual(1, metric(series, "wsrelay_deflate_connections"))
        self.assertEqual(1, metric(series, "wsrelay_compressed_frames_total"))
        self.assertNoTokenLogged(relay)

    async def test_browser_with_an_expired_token_never_opens(self):
        relay = await self.start_relay(auth_config())
        self.open_page(relay, self.tok("HS256", claims(exp=now() - 60)), "room:browser")
        # A refused handshake reaches a page only as error + close 1006.
        events = [await self.next_event(BROWSER_TIMEOUT), await self.next_event()]
        self.assertEqual(["error", "close"], [e["event"] for e in events], events)
        self.assertEqual(1006, events[1]["code"])
        series = await relay.wait_metric(
            lambda s: count(s, "wsrelay_auth_failures_total", reason="expired") == 1,
            what="auth_failures{reason=expired} == 1")
        self.assertEqual(0, metric(series, "wsrelay_handshakes_total", result="ok"))
        self.assertNoTokenLogged(relay)


if __name__ == "__main__":
    unittest.main()
