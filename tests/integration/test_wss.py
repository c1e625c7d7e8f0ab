"""wss:// (tls.cert_file, tls.key_file): Python's ssl client and python3-websockets against a relay
whose listen.port speaks TLS, with the throwaway PKI of tests/tls/make_certs.sh (docs/config.md
"tls", docs/operations.md "Certificate rotation").

What runs over plain ws:// runs over TLS unchanged: pub/sub, the bearer subprotocol read by the
gate, the connect hook, the HTTP endpoints, the per-address bounds (the client's real address
reaches them), a slow reader closed as a slow consumer, the drain's close frames. TLS below 1.2 is
refused. Rotation: files replaced the way a Kubernetes Secret volume does it (a symlink swap) are
served to new connections while open ones keep going; a half-written or mismatched pair is
counted, logged and ignored until it is whole.
"""

import asyncio
import base64
import hashlib
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import unittest

import websockets

from auth_tokens import API_KEY, AuthTestCase, auth_config, claims, connect, count
from hook_gate_backend import GateBackend
from test_auth_browser import BROWSER_TIMEOUT, CHROMIUM, EVENT_TIMEOUT, Chromium, PageServer
from relay_harness import (HOST, IO_TIMEOUT, UNMETERED, Relay, RelayError, binary, closed_with,
                           metric, recv_json, request, send_json, subscribe, wait_until)

SOURCE_DIR = os.environ.get("WSRELAY_SOURCE_DIR",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAKE_CERTS = os.path.join(SOURCE_DIR, "tests", "tls", "make_certs.sh")
RELOAD_MS = 100


class Pki:
    """make_certs.sh's files, plus more leaves signed by the same CA (each a new serial)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wsrelay-wss-pki-")
        subprocess.run(["bash", MAKE_CERTS, self.dir], check=True, timeout=60)
        self.ca = self.path("ca.crt")
        self._leaves = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def leaf(self):
        """(cert PEM bytes, key PEM bytes) of a new server certificate for 127.0.0.1."""
        self._leaves += 1
        name = self.path(f"leaf{self._leaves}")
        run = lambda *args: subprocess.run(args, check=True, timeout=60, capture_output=True)
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN=localhost-{self._leaves}", "-keyout", name + ".key", "-out",
            name + ".csr")
        ext = name + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", self.ca, "-CAkey",
            self.path("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", ext, "-out",
            name + ".crt")
        return read(name + ".crt"), read(name + ".key")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def serial_of_pem(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, check=True,
                         capture_output=True, timeout=30).stdout.decode()
    return out.strip().split("=", 1)[1].upper()


class SecretVolume:
    """A directory laid out as Kubernetes mounts a Secret: tls.crt and tls.key are symlinks into
    `..data`, itself a symlink to a timestamped directory; an update writes a new directory and
    renames a new `..data` link over the old one (one atomic step for both files)."""

    def __init__(self, cert, key):
        self.dir = tempfile.mkdtemp(prefix="wsrelay-wss-secret-")
        self._version = 0
        self.update(cert, key)
        for name in ("tls.crt", "tls.key"):
            os.symlink(os.path.join("..data", name), os.path.join(self.dir, name))
        self.cert = os.path.join(self.dir, "tls.crt")
        self.key = os.path.join(self.dir, "tls.key")

    def update(self, cert, key):
        self._version += 1
        version = f"..v{self._version}"
        os.mkdir(os.path.join(self.dir, version))
        for name, data in (("tls.crt", cert), ("tls.key", key)):
            with open(os.path.join(self.dir, version, name), "wb") as f:
                f.write(data)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(version, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def client_context(ca, minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class TlsRelay(Relay):
    """A Relay whose port speaks TLS: its HTTP helpers and WebSocket URIs use it."""

    def __init__(self, ca, cert, key, overrides=None, **kwargs):
        config = {"tls.cert_file": cert, "tls.key_file": key}
        config.update(overrides or {})
        super().__init__(config, **kwargs)
        self.ca = ca
        self.http_source = HOST  # the address the HTTP helpers connect from

    def context(self):
        return client_context(self.ca)

    def _request(self, method, path, body, headers, timeout):
        import http.client
        conn = http.client.HTTPSConnection(HOST, self.port, timeout=timeout,
                                           context=self.context(),
                                           source_address=(self.http_source, 0))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def http_get(self, path, headers=None, timeout=IO_TIMEOUT):
        return self._request("GET", path, None, headers, timeout)

    def http_post(self, path, body, headers=None, timeout=IO_TIMEOUT):
        import json
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return self._request("POST", path, body,
                             {"Content-Type": "application/json", **(headers or {})}, timeout)

    def ws_uri(self, path="/ws"):
        return f"wss://{HOST}:{self.port}{path}"

    def ws_connect(self, path="/ws", origin=None, **kwargs):
        opts = dict(open_timeout=IO_TIMEOUT, close_timeout=IO_TIMEOUT, compression=None,
                    max_queue=None, max_size=2**24, ssl=self.context())
        opts.update(kwargs)
        return websockets.connect(self.ws_uri(path), origin=origin, **opts)


def peer_serial(ws):
    return ws.transport.get_extra_info("ssl_object").getpeercert()["serialNumber"].upper()


def tls_connect(port, ctx, source=HOST):
    """A blocking TLS socket to the relay, bound to `source` (a loopback address)."""
    raw = socket.create_connection((HOST, port), timeout=IO_TIMEOUT, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw, server_hostname=HOST)
    except BaseException:
        raw.close()
        raise


PKI = None


def setUpModule():
    global PKI
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("openssl is not installed")
    PKI = Pki()


def tearDownModule():
    if PKI is not None:
        PKI.cleanup()


class WssTestCase(AuthTestCase):
    async def start_tls_relay(self, overrides=None, cert=None, key=None, **kwargs):
        overrides = {**getattr(self, "relay_defaults", {}), **(overrides or {})}
        relay = TlsRelay(PKI.ca, cert or PKI.path("server.crt"), key or PKI.path("server.key"),
                         overrides, **kwargs)
        await asyncio.to_thread(relay.start)
        self._relays.append(relay)
        return relay


class WssBasicsTest(WssTestCase):
    async def test_pubsub_and_http_endpoints_over_tls(self):
        relay = await self.start_tls_relay()
        self.assertIn("tls=on", relay.log())
        status, _, body = await relay.ahttp_get("/healthz")
        self.assertEqual(200, status, body)
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            self.assertEqual("TLSv1.3", sub.transport.get_extra_info("ssl_object").version())
            await subscribe(sub, "news")
            data = {"text": "x" * 50000}  # several TLS records
            self.assertEqual({"op": "ack", "id": 2}, await request(
                pub, {"op": "publish", "channel": "news", "data": data, "id": 2}))
            self.assertEqual({"op": "message", "channel": "news", "data": data},
                             await recv_json(sub))
        # The scrape is a TLS connection too.
        series = await relay.wait_metric(
            lambda s: count(s, "wsrelay_tls_connections") == 1, what="TLS connections closed")
        # /healthz, the two sockets, and the scrapes themselves: all handshakes succeeded.
        self.assertGreaterEqual(metric(series, "wsrelay_tls_handshakes_total", result="ok"), 3)
        self.assertEqual(0, metric(series, "wsrelay_tls_handshakes_total", result="error"))
        self.assertGreater(metric(series, "wsrelay_tls_cert_expiry_timestamp_seconds"), 0)

    async def test_plain_http_on_the_tls_port_fails_the_handshake(self):
        relay = await self.start_tls_relay({"workers": 1})

        def plain():
            with socket.create_connection((HOST, relay.port), timeout=IO_TIMEOUT) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        return data
                    data += chunk

        answer = await asyncio.to_thread(plain)
        self.assertNotIn(b"HTTP/1.1 200", answer)
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_tls_handshakes_total", result="error") == 1,
            what="tls_handshakes{result=error} == 1")

    async def test_tls_1_1_is_refused(self):
        relay = await self.start_tls_relay({"workers": 1})
        old = client_context(PKI.ca, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
        # The client's own OpenSSL refuses TLS 1.1 at its default security level: lower it, so
        # that the ClientHello is sent and the refusal is the relay's.
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        with self.assertRaises(ssl.SSLError) as caught:
            await asyncio.to_thread(tls_connect, relay.port, old)
        self.assertIn("VERSION", caught.exception.reason or str(caught.exception).upper())
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_tls_handshakes_total", result="error") == 1,
            what="tls_handshakes{result=error} == 1")
        # TLS 1.2 still works by default...
        tls12 = client_context(PKI.ca, maximum=ssl.TLSVersion.TLSv1_2)
        conn = await asyncio.to_thread(tls_connect, relay.port, tls12)
        self.assertEqual("TLSv1.2", conn.version())
        conn.close()

    async def test_min_version_1_3_refuses_tls_1_2(self):
        relay = await self.start_tls_relay({"workers": 1, "tls.min_version": "1.3"})
        tls12 = client_context(PKI.ca, maximum=ssl.TLSVersion.TLSv1_2)
        with self.assertRaises(ssl.SSLError):
            await asyncio.to_thread(tls_connect, relay.port, tls12)
        conn = await asyncio.to_thread(tls_connect, relay.port, client_context(PKI.ca))
        self.assertEqual("TLSv1.3", conn.version())
        conn.close()

    async def test_tls_1_2_uses_the_servers_cipher_order_and_no_compression(self):
        relay = await self.start_tls_relay({"workers": 1})
        ctx = client_context(PKI.ca, maximum=ssl.TLSVersion.TLSv1_2)
        # The client prefers CHACHA20; the relay's list puts AES-GCM first, and it decides.
        ctx.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-AES128-GCM-SHA256")
        conn = await asyncio.to_thread(tls_connect, relay.port, ctx)
        try:
            self.assertIn("AES", conn.cipher()[0])
            self.assertIsNone(conn.compression())
        finally:
            conn.close()


class WssGateTest(WssTestCase):
    async def test_bearer_subprotocol_through_tls(self):
        relay = await self.start_tls_relay(auth_config())
        token = self.tok("ES256", claims("alice", channels=["room:*"]))
        async with connect(relay, token, "subprotocol") as ws:
            self.assertEqual("wsrelay.v1", ws.subprotocol)
            await subscribe(ws, "room:a")
            await self.api_publish(relay, "room:a", {"n": 1})
            self.assertEqual({"op": "message", "channel": "room:a", "data": {"n": 1}},
                             await recv_json(ws))
        await self.assertAccepted(relay, self.tok("HS256"), via="bearer")
        with self.assertRaises(websockets.InvalidStatusCode) as caught:
            async with connect(relay, self.tok("HS256", claims(ttl=-60)), "subprotocol"):
                pass
        self.assertEqual(401, caught.exception.status_code)
        self.assertNoTokenLogged(relay)

    async def test_connect_hook_parks_the_tls_connection(self):
        backend = await asyncio.to_thread(GateBackend)
        self.addCleanup(backend.stop)
        relay = await self.start_tls_relay({"hook.url": backend.url(), "hook.timeout_ms": 2000,
                                            "hook.events": ["connect", "disconnect"]})
        async with relay.ws_connect() as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
        await backend.script("connect", {"deny": {"message": "not today"}})
        with self.assertRaises(websockets.InvalidStatusCode) as caught:
            async with relay.ws_connect():
                pass
        self.assertEqual(403, caught.exception.status_code)
        events = [e["event"] for e in await backend.events()]
        self.assertEqual(2, events.count("connect"), events)

    async def test_the_clients_own_address_reaches_the_per_address_bound(self):
        # One handshake pending per address: a second one from 127.0.0.1 is closed, one from
        # 127.0.0.2 is not. Were the gate to see the socketpair's address, all would share it.
        relay = await self.start_tls_relay(
            {"workers": 1, "limits.max_pending_handshakes_per_ip": 1})
        relay.http_source = "127.0.0.3"  # the scrapes are pending connections too, briefly
        ctx = client_context(PKI.ca)
        idle = await asyncio.to_thread(tls_connect, relay.port, ctx)  # no request: pending
        self.addCleanup(idle.close)
        await relay.wait_metric(lambda s: count(s, "wsrelay_pending_connections") == 2,
                                what="one idle connection pending (and the scrape)")

        def refused():
            try:
                s = tls_connect(relay.port, ctx)
            except (ssl.SSLError, ConnectionError, OSError):
                return True
            with s:
                s.settimeout(IO_TIMEOUT)
                try:
                    return s.recv(1) == b""
                except (ssl.SSLError, ConnectionError):
                    return True

        self.assertTrue(await asyncio.to_thread(refused))
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_pending_closed_total", reason="per_address") == 1,
            what="pending_closed{per_address} == 1")
        other = await asyncio.to_thread(tls_connect, relay.port, ctx, "127.0.0.2")
        self.addCleanup(other.close)
        series = await relay.wait_metric(
            lambda s: count(s, "wsrelay_pending_connections") == 3,
            what="a second address admitted")
        self.assertEqual(1, count(series, "wsrelay_pending_closed_total", reason="per_address"))


class WssBackpressureTest(WssTestCase):
    relay_defaults = UNMETERED  # one connection publishes the flood

    async def test_a_tls_client_that_stops_reading_is_a_slow_consumer(self):
        relay = await self.start_tls_relay({
            "workers": 1, "limits.send_queue_bytes": 262144, "limits.send_queue_messages": 100000,
            "limits.socket_send_buffer_bytes": 65536})
        ctx = client_context(PKI.ca)

        def stalled_subscriber():
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            raw.settimeout(IO_TIMEOUT)
            raw.connect((HOST, relay.port))
            s = ctx.wrap_socket(raw, server_hostname=HOST)
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert b" 101 " in head, head
            # A masked subscribe frame, then never read again.
            payload = b'{"op":"subscribe","channel":"flood","id":1}'
            mask = os.urandom(4)
            s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask +
                      bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            return s

        stalled = await asyncio.to_thread(stalled_subscriber)
        self.addCleanup(stalled.close)
        await relay.wait_metric(lambda s: count(s, "wsrelay_subscriptions") == 1,
                                what="the stalled client subscribed")
        data = "y" * 8000
        async with relay.ws_connect() as fast, relay.ws_connect() as pub:
            await subscribe(fast, "flood")
            for i in range(400):  # 3.2 MB: far more than every buffer on the way
                await send_json(pub, {"op": "publish", "channel": "flood", "data": data})
                # The fast TLS reader keeps up and gets everything, in order.
                self.assertEqual(data, (await recv_json(fast))["data"])
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_dropped_messages_total", reason="slow_consumer_close") > 0,
            timeout=15, what="the stalled TLS client closed as a slow consumer")

        def read_to_the_end():
            stalled.settimeout(15)
            try:
                while stalled.recv(65536):
                    pass
            except (ssl.SSLError, ConnectionError):
                pass

        # Reading again, it gets what was buffered, then the close: the session ends with 4001.
        await asyncio.to_thread(read_to_the_end)
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_disconnects_total", code="4001") == 1,
            what="disconnects{code=4001} == 1")


class WssDrainTest(WssTestCase):
    async def test_drain_sends_reconnect_and_1001_over_tls(self):
        relay = await self.start_tls_relay({"workers": 1, "drain.window_ms": 100})
        async with relay.ws_connect() as ws:
            await subscribe(ws, "x")
            relay.signal(signal.SIGTERM)
            code, frames = await closed_with(ws, timeout=10)
            self.assertEqual(1001, code)
            self.assertIn('{"op":"reconnect"}', frames)
        self.assertEqual(0, await asyncio.to_thread(relay.wait))


class WssRotationTest(WssTestCase):
    async def start_on_secret(self, overrides=None):
        secret = SecretVolume(*PKI.leaf())
        self.addCleanup(secret.cleanup)
        config = {"tls.reload_interval_ms": RELOAD_MS}
        config.update(overrides or {})
        relay = await self.start_tls_relay(config, cert=secret.cert, key=secret.key)
        return secret, relay

    async def test_a_new_certificate_is_served_to_new_connections_only(self):
        secret, relay = await self.start_on_secret()
        first_cert = read(secret.cert)
        async with relay.ws_connect() as old:
            self.assertEqual(serial_of_pem(first_cert), peer_serial(old))
            await subscribe(old, "rot")
            new_cert, new_key = PKI.leaf()
            self.assertNotEqual(serial_of_pem(first_cert), serial_of_pem(new_cert))
            secret.update(new_cert, new_key)
            await relay.wait_metric(
                lambda s: count(s, "wsrelay_tls_cert_reloads_total", result="ok") == 1,
                what="one reload")
            async with relay.ws_connect() as new:
                self.assertEqual(serial_of_pem(new_cert), peer_serial(new))
                await request(new, {"op": "publish", "channel": "rot", "data": 1, "id": 5})
            # The connection opened before the reload keeps its session and its certificate.
            self.assertEqual({"op": "message", "channel": "rot", "data": 1}, await recv_json(old))
            self.assertEqual(serial_of_pem(first_cert), peer_serial(old))
        relay.wait_for_log(f"serial {serial_of_pem(new_cert)}", IO_TIMEOUT)

    async def test_half_written_and_mismatched_files_are_ignored_until_whole(self):
        secret, relay = await self.start_on_secret({"workers": 1})
        served = serial_of_pem(read(secret.cert))
        new_cert, new_key = PKI.leaf()
        other_cert, _ = PKI.leaf()

        async def serial_now():
            async with relay.ws_connect() as ws:
                return peer_serial(ws)

        async def failures(n):
            await relay.wait_metric(
                lambda s: count(s, "wsrelay_tls_cert_reloads_total", result="error") >= n,
                what=f"{n} failed reload(s)")

        # Cut short in place, as a copy in progress leaves it.
        target = os.path.realpath(secret.cert)
        with open(target, "wb") as f:
            f.write(new_cert[: len(new_cert) // 2])
        await failures(1)
        relay.wait_for_log("tls.cert_file", IO_TIMEOUT)
        self.assertEqual(served, await serial_now())
        # Whole, but the key is another certificate's.
        with open(target, "wb") as f:
            f.write(other_cert)
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_tls_cert_reloads_total", result="error") >= 2 and
            "does not match" in relay.log(), what="a mismatch refused")
        self.assertEqual(served, await serial_now())
        # The right pair: loaded.
        secret.update(new_cert, new_key)
        await relay.wait_metric(
            lambda s: count(s, "wsrelay_tls_cert_reloads_total", result="ok") == 1,
            what="the whole pair loaded")
        self.assertEqual(serial_of_pem(new_cert), await serial_now())


def spki_sha256(cert_path):
    """base64 of the SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    cert = x509.load_pem_x509_certificate(read(cert_path))
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is not installed")
class WssBrowserTest(WssTestCase):
    """Headless Chromium opens wss:// with the bearer subprotocol (browser_auth.html), trusting
    the test server's key by its SPKI hash, and shows a message published through the HTTPS API."""

    async def test_chromium_subscribes_over_wss(self):
        relay = await self.start_tls_relay(auth_config({"workers": 1}))
        pages = PageServer()
        self.addCleanup(pages.close)
        token = self.tok("ES256", claims("browser-user", channels=["room:*"]))
        browser = Chromium(
            pages.url({"ws": relay.ws_uri(), "token": token, "channel": "room:tls"}),
            [f"--ignore-certificate-errors-spki-list={spki_sha256(PKI.path('server.crt'))}"])
        self.addCleanup(browser.close)

        async def next_event(timeout=EVENT_TIMEOUT):
            try:
                return await asyncio.to_thread(pages.events.get, timeout=timeout)
            except queue.Empty:
                self.fail(f"no event from the page within {timeout}s; Chromium's output:\n"
                          f"{browser.log()}\n")

        opened = await next_event(BROWSER_TIMEOUT)
        # permessage-deflate is negotiated over TLS as over plain TCP (websocket.compression on).
        self.assertEqual({"event": "open", "protocol": "wsrelay.v1",
                          "extensions": "permessage-deflate", "shown": ""}, opened)
        self.assertEqual({"op": "ack", "id": 1}, (await next_event())["frame"])
        await self.api_publish(relay, "room:tls", {"text": "over TLS"})
        self.assertEqual({"op": "message", "channel": "room:tls", "data": {"text": "over TLS"}},
                         (await next_event())["frame"])
        series = await relay.ametrics()
        self.assertEqual(0, count(series, "wsrelay_tls_handshakes_total", result="error"))
        self.assertNoTokenLogged(relay)


class WssCheckConfigTest(unittest.TestCase):
    def check(self, config):
        with tempfile.TemporaryDirectory(prefix="wsrelay-wss-check-") as d:
            path = os.path.join(d, "wsrelay.yaml")
            with open(path, "w") as f:
                f.write("tls:\n")
                for k, v in config.items():
                    f.write(f"  {k}: {v!r}\n".replace("'", '"'))
            env = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
            done = subprocess.run([binary(), "--check-config", path], capture_output=True,
                                  text=True, timeout=30, env=env)
            return done.returncode, done.stdout + done.stderr

    def assertRefused(self, config, *needles):
        code, out = self.check(config)
        self.assertEqual(1, code, out)
        for needle in needles:
            self.assertIn(needle, out)

    def test_files_are_checked(self):
        cert, key = PKI.path("server.crt"), PKI.path("server.key")
        self.assertEqual(0, self.check({"cert_file": cert, "key_file": key})[0])
        self.assertRefused({"cert_file": "/nonexistent/cert.pem", "key_file": key},
                           "tls.cert_file", "/nonexistent/cert.pem", "No such file")
        self.assertRefused({"cert_file": cert, "key_file": "/nonexistent/key.pem"},
                           "tls.key_file", "No such file")
        self.assertRefused({"cert_file": PKI.dir, "key_file": key}, "tls.cert_file",
                           "not a regular file")
        self.assertRefused({"cert_file": cert, "key_file": PKI.path("client.key")},
                           "tls.key_file", "does not match")
        self.assertRefused({"cert_file": key, "key_file": key}, "tls.cert_file",
                           "no PEM certificate")
        self.assertRefused({"cert_file": cert}, "tls.cert_file is set without tls.key_file")
        self.assertRefused({"cert_file": cert, "key_file": key, "ciphers": "NOPE-NOTHING"},
                           "tls.ciphers")
        self.assertRefused({"cert_file": cert, "key_file": key, "min_version": "1.1"},
                           "tls.min_version")

    def test_an_unreadable_file_is_refused(self):
        if os.geteuid() == 0:
            self.skipTest("root reads files whatever their mode")
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "key.pem")
            shutil.copy(PKI.path("server.key"), key)
            os.chmod(key, 0)
            code, out = self.check({"cert_file": PKI.path("server.crt"), "key_file": key})
            self.assertEqual(1, code, out)
            self.assertIn("tls.key_file", out)
            self.assertIn("Permission denied", out)

    def test_startup_refuses_what_check_config_refuses(self):
        relay = TlsRelay(PKI.ca, PKI.path("server.crt"), PKI.path("client.key"),
                         check_exit=False)
        with self.assertRaises(RelayError) as caught:
            relay.start()
        relay.close()
        self.assertIn("does not match", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
