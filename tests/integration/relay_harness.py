"""Runs the real wsrelay binary for integration tests and talks to it.

Relay starts WSRELAY_BIN with a temporary config (JSON, which is YAML) on a free loopback port and
waits for its readiness log line; every wait has a timeout and every failure carries the server's
log. RawWebSocket is a minimal client for what a well-behaved library will not do (never read,
never answer pings, send invalid frames).
"""

import asyncio
import base64
import http.client
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

HOST = "127.0.0.1"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 5.0

# Applied before the test's overrides: one worker count for every machine, a short drain so that
# stopping a server with clients still connected is quick.
DEFAULTS = {
    "workers": 2,
    "drain.window_ms": 200,
    "log.level": "info",
}

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def env_executable(var):
    """The executable CTest names in environment variable `var` (tests skip outside CTest)."""
    path = os.environ.get(var)
    if not path:
        raise unittest.SkipTest(f"{var} is not set (run through ctest)")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{var}={path} is not an executable")
    return path


def binary():
    return env_executable("WSRELAY_BIN")


def reserve_port():
    """Binds 127.0.0.1:0 with SO_REUSEPORT and returns (socket, port). Keep the socket open until
    the server listens: the relay binds with SO_REUSEPORT too, so it can share the port with this
    idle socket, while no other test's bind(0) can be handed the same port meanwhile (another
    relay on our port would silently take half of our connections)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((HOST, 0))
    return s, s.getsockname()[1]


def nest(dotted):
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}"""
    out = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def end_process(proc, timeout=10):
    """SIGTERM by PID, SIGKILL when it has not exited within timeout. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=timeout)


class RelayError(AssertionError):
    pass


class Relay:
    """A wsrelay process. Use as a (sync or async) context manager, or start()/stop().

    overrides: dotted config keys, e.g. {"limits.max_connections": 2}.
    check_exit: on leaving the context, fail unless the server exited with code 0 (catches
    sanitizer reports and crashes at shutdown).
    nofile: start the server with this open-file limit.
    """

    def __init__(self, overrides=None, check_exit=True, ready_timeout=READY_TIMEOUT, nofile=None):
        self.overrides = dict(overrides or {})
        self.nofile = nofile  # the server's open-file limit (soft and hard), when set
        self.check_exit = check_exit
        self.ready_timeout = ready_timeout
        self.port = None
        self.proc = None
        self.returncode = None
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="wsrelay-itest-")
        self.config_path = os.path.join(self._tmpdir.name, "wsrelay.yaml")

    # ---- lifecycle ----

    def start(self):
        last_error = None
        for _ in range(5):
            reservation, self.port = reserve_port()
            try:
                self._start_once()
                return self
            except RelayError as e:
                last_error = e
                if "in use" not in self.log().lower():
                    raise
            finally:
                reservation.close()
        raise last_error

    def _start_once(self):
        config = dict(DEFAULTS)
        config.update(self.overrides)
        config["listen.host"] = HOST
        config["listen.port"] = self.port
        with open(self.config_path, "w") as f:
            json.dump(nest(config), f, indent=2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
        with self._cond:
            self._lines = []
        self.returncode = None
        limit = None
        if self.nofile is not None:
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        self.proc = subprocess.Popen(
            [binary(), "--config", self.config_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=limit,
        )
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True)
        self._reader.start()
        ready = f"wsrelay ready: listening on {HOST}:{self.port}"
        if not self.wait_for_log(ready, self.ready_timeout, fail=False):
            exited = self.proc.poll() is not None
            self._kill()
            what = "exited before it was ready" if exited else f"not ready in {self.ready_timeout}s"
            raise RelayError(f"wsrelay {what} (port {self.port})\n{self.log()}")

    def _read_stderr(self, proc):
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        proc.stderr.close()
        with self._cond:
            self._lines.append(None)  # EOF marker
            self._cond.notify_all()

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)
        if self._reader:
            self._reader.join(timeout=STOP_TIMEOUT)

    def sanitized(self):
        """Whether the running server is built with AddressSanitizer (its runtime is mapped)."""
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return any("libasan" in line or "libclang_rt.asan" in line for line in f)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; returns its exit code (negative: killed by a signal)."""
        self.returncode = self.proc.wait(timeout=timeout)
        if self._reader:
            self._reader.join(timeout=timeout)
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, SIGKILL when it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise RelayError(f"wsrelay did not exit {timeout}s after SIGTERM\n{self.log()}")
        return self.wait(timeout)

    def close(self):
        try:
            code = self.stop()
        finally:
            if self.proc and self.proc.poll() is None:
                self._kill()
            self._tmpdir.cleanup()
        if self.check_exit and code != 0:
            raise RelayError(f"wsrelay exited with {code}\n{self.log()}")

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except RelayError:
            if exc_type is None:
                raise

    async def __aenter__(self):
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, exc_type, exc, tb):
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)

    # ---- log ----

    def log(self):
        with self._cond:
            return "\n".join(line for line in self._lines if line is not None)

    def wait_for_log(self, needle, timeout, fail=True):
        """Waits for a stderr line containing `needle` (a str, or a compiled regex)."""
        deadline = time.monotonic() + timeout
        seen = 0

        def matches(line):
            if isinstance(needle, str):
                return needle in line
            return needle.search(line) is not None

        with self._cond:
            while True:
                while seen < len(self._lines):
                    line = self._lines[seen]
                    seen += 1
                    if line is None:
                        break
                    if matches(line):
                        return line
                else:
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        self._cond.wait(remaining)
                        continue
                break
        if fail:
            raise RelayError(f"no log line matching {needle!r} within {timeout}s\n{self.log()}")
        return None

    # ---- HTTP ----

    def http_get(self, path, headers=None, timeout=IO_TIMEOUT):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    async def ahttp_get(self, path, headers=None, timeout=IO_TIMEOUT):
        return await asyncio.to_thread(self.http_get, path, headers, timeout)

    def http_post(self, path, body, headers=None, timeout=IO_TIMEOUT):
        """POSTs `body` (bytes, str, or anything else as JSON); returns like http_get."""
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("POST", path, body=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    async def ahttp_post(self, path, body, headers=None, timeout=IO_TIMEOUT):
        return await asyncio.to_thread(self.http_post, path, body, headers, timeout)

    def http_upgrade(self, path="/ws", headers=None, timeout=IO_TIMEOUT):
        """A WebSocket upgrade request that is expected to be refused (a 101 is returned with an
        empty body and the connection dropped); returns like http_get."""
        upgrade = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        }
        upgrade.update(headers or {})
        return self.http_get(path, upgrade, timeout)

    async def ahttp_upgrade(self, path="/ws", headers=None, timeout=IO_TIMEOUT):
        return await asyncio.to_thread(self.http_upgrade, path, headers, timeout)

    def metrics(self):
        status, _, body = self.http_get("/metrics")
        if status != 200:
            raise RelayError(f"/metrics answered {status}: {body[:200]!r}")
        return parse_metrics(body.decode())

    async def ametrics(self):
        return await asyncio.to_thread(self.metrics)

    async def wait_metric(self, predicate, timeout=IO_TIMEOUT, what="metrics condition"):
        """Scrapes /metrics until predicate(series) holds; the server updates some series just
        after the event a client sees (e.g. a socket close), so a single scrape could race."""
        deadline = time.monotonic() + timeout
        while True:
            series = await self.ametrics()
            if predicate(series):
                return series
            if time.monotonic() > deadline:
                shown = {k: v for k, v in series.items() if k.startswith("wsrelay_")}
                raise RelayError(f"{what} not met within {timeout}s; series: {shown}")
            await asyncio.sleep(0.05)

    # ---- WebSocket ----

    def ws_uri(self, path="/ws"):
        return f"ws://{HOST}:{self.port}{path}"

    def ws_connect(self, path="/ws", origin=None, **kwargs):
        """websockets' legacy client: use as `async with relay.ws_connect() as ws` or await it."""
        opts = dict(open_timeout=IO_TIMEOUT, close_timeout=IO_TIMEOUT, compression=None,
                    max_queue=None, max_size=2**24)
        opts.update(kwargs)
        return websockets.connect(self.ws_uri(path), origin=origin, **opts)

    async def raw_connect(self, path="/ws", origin=None, rcvbuf=None, extensions=None):
        ws = RawWebSocket(HOST, self.port, path, origin=origin, rcvbuf=rcvbuf,
                          extensions=extensions)
        await ws.connect()
        return ws


_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series_key(name, **labels):
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def parse_metrics(text):
    """Prometheus text format -> {series_key: float}; keys as series_key() builds them."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SERIES.match(line)
        if not m:
            raise RelayError(f"unparsable metrics line: {line!r}")
        name, _, labels, value = m.group(1), m.group(2), m.group(3), m.group(4)
        label_map = dict(_LABEL.findall(labels or ""))
        out[series_key(name, **label_map)] = float(value)
    return out


def metric(series, name, **labels):
    key = series_key(name, **labels)
    if key not in series:
        raise RelayError(f"series {key} missing from /metrics")
    return series[key]


# ---- raw HTTP ----

def read_response(s, timeout=IO_TIMEOUT):
    """One HTTP response from socket `s`: (status, lower-case headers, body)."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


# ---- JSON protocol helpers ----

async def send_json(ws, obj):
    await ws.send(json.dumps(obj))


async def recv_json(ws, timeout=IO_TIMEOUT):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(msg, str):
        raise AssertionError(f"expected a text frame, got {msg!r}")
    return json.loads(msg)


async def request(ws, obj, timeout=IO_TIMEOUT):
    """Sends a command with an id and returns the reply carrying that id. Fails on any other
    frame arriving first (a test that expects messages reads them itself)."""
    await send_json(ws, obj)
    reply = await recv_json(ws, timeout)
    if reply.get("id") != obj.get("id"):
        raise AssertionError(f"expected the reply to {obj}, got {reply}")
    return reply


async def subscribe(ws, channel, id=1):
    reply = await request(ws, {"op": "subscribe", "channel": channel, "id": id})
    if reply != {"op": "ack", "id": id}:
        raise AssertionError(f"subscribe {channel!r} answered {reply}")


async def ping_barrier(ws, id=999999, timeout=IO_TIMEOUT):
    """A ping op round trip; returns every frame that arrived before the pong (the server handles
    a connection's frames in order, so these are all it had queued for us)."""
    await send_json(ws, {"op": "ping", "id": id})
    before = []
    while True:
        frame = await recv_json(ws, timeout)
        if frame == {"op": "pong", "id": id}:
            return before
        before.append(frame)


async def closed_with(ws, timeout=IO_TIMEOUT):
    """Reads until the server closes; returns (close code, frames received before it)."""
    frames = []

    async def drain():
        try:
            while True:
                frames.append(await ws.recv())
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()

    try:
        await asyncio.wait_for(drain(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"connection still open after {timeout}s; received {frames[:5]}")
    return ws.close_code, frames


# ---- raw client ----

class Closed(Exception):
    """The raw connection ended: `code` is the close frame's code, None on EOF/reset without one."""

    def __init__(self, code, reason=b"", how="close frame"):
        super().__init__(f"closed ({how}): {code} {reason!r}")
        self.code = code
        self.reason = reason
        self.how = how


class RawWebSocket:
    """A hand-rolled RFC 6455 client over asyncio streams. It never reads unless asked and never
    answers pings unless asked, and it can send any frame."""

    def __init__(self, host, port, path="/ws", origin=None, rcvbuf=None, extensions=None):
        self.host, self.port, self.path = host, port, path
        self.origin = origin
        self.extensions = extensions  # a Sec-WebSocket-Extensions offer
        self.response_head = b""
        self.last_rsv = 0  # the RSV bits of the last frame read (0x40: RSV1, compressed)
        self.rcvbuf = rcvbuf
        self.reader = None
        self.writer = None
        self.pings = 0
        self.ping_times = []  # time.monotonic() of each ping received
        self.close_code = None

    async def connect(self, timeout=IO_TIMEOUT):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            # Before connect(), so the window advertised in the handshake is already small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (self.host, self.port)), timeout)
        # A small stream limit too, so asyncio's own buffering does not drain the socket for us.
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.origin:
            lines.append(f"Origin: {self.origin}")
        if self.extensions:
            lines.append(f"Sec-WebSocket-Extensions: {self.extensions}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        self.response_head = head
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise AssertionError(f"handshake failed: {head!r}")
        return self

    def pause_reading(self):
        """Stops asyncio from reading the socket, so the kernel receive buffer fills up."""
        self.writer.transport.pause_reading()

    def resume_reading(self):
        self.writer.transport.resume_reading()

    async def send_frame(self, opcode, payload, fin=True, mask=True):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head.append(mbit | n)
        elif n < 65536:
            head.append(mbit | 126)
            head += struct.pack("!H", n)
        else:
            head.append(mbit | 127)
            head += struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes(head) + payload)
        await self.writer.drain()

    async def send_text(self, text):
        await self.send_frame(OP_TEXT, text)

    async def send_json(self, obj):
        await self.send_text(json.dumps(obj))

    async def read_frame(self, timeout=IO_TIMEOUT):
        """Returns (fin, opcode, payload). Raises Closed on EOF or reset."""
        async def read():
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            if b1 & 0x80:
                raise AssertionError("the server sent a masked frame")
            return b0, await self.reader.readexactly(n)

        try:
            b0, payload = await asyncio.wait_for(read(), timeout)
            self.last_rsv = b0 & 0x70
        except asyncio.IncompleteReadError:
            raise Closed(None, how="EOF")
        except (ConnectionResetError, BrokenPipeError):
            raise Closed(None, how="reset")
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def recv(self, timeout=IO_TIMEOUT, answer_pings=False):
        """Next data message (str for text, bytes for binary); counts pings, answers them only
        when asked; raises Closed when the server closes (echoing its close frame)."""
        deadline = time.monotonic() + timeout
        while True:
            fin, opcode, payload = await self.read_frame(max(0.01, deadline - time.monotonic()))
            if opcode == OP_PING:
                self.pings += 1
                self.ping_times.append(time.monotonic())
                if answer_pings:
                    await self.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code
                try:
                    await self.send_frame(OP_CLOSE, payload[:2])
                except (ConnectionError, OSError):
                    pass
                raise Closed(code, payload[2:])
            if not fin:
                raise AssertionError("the relay is not expected to fragment its frames")
            return payload.decode() if opcode == OP_TEXT else payload

    async def recv_json(self, timeout=IO_TIMEOUT, answer_pings=False):
        msg = await self.recv(timeout, answer_pings)
        return json.loads(msg)

    async def wait_pings(self, count, timeout=IO_TIMEOUT, answer_pings=True):
        """Reads until `count` pings in all have arrived; fails on a data message."""
        deadline = time.monotonic() + timeout
        while self.pings < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.pings} pings after {timeout}s, expected {count}")
            fin, opcode, payload = await self.read_frame(remaining)
            if opcode == OP_PING:
                self.pings += 1
                self.ping_times.append(time.monotonic())
                if answer_pings:
                    await self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code
                raise Closed(code, payload[2:])
            elif opcode != OP_PONG:
                raise AssertionError(f"unexpected frame {opcode:#x} {payload[:100]!r}")

    async def wait_closed(self, timeout=IO_TIMEOUT, answer_pings=False):
        """Reads (and discards data) until the connection ends; returns the Closed."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"connection still open after {timeout}s")
            try:
                await self.recv(remaining, answer_pings)
            except Closed as c:
                return c

    def abort(self):
        if self.writer:
            self.writer.transport.abort()

    async def close(self):
        if self.writer and not self.writer.is_closing():
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), IO_TIMEOUT)
            except (ConnectionError, OSError, asyncio.TimeoutError):
                pass



# ---- Redis ----

REDIS_SERVER = "/usr/bin/redis-server"


class RedisError(AssertionError):
    """An error reply from Redis, or Redis not answering."""


def _resp_command(*args):
    out = bytearray(b"*%d\r\n" % len(args))
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return bytes(out)


class RespConnection:
    """A tiny synchronous RESP2 client: one blocking socket with a timeout on every call. Replies
    come back as str (status), int, bytes (bulk), None (nil) or list; an error reply raises
    RedisError."""

    def __init__(self, port, host=HOST, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        self.sock.sendall(_resp_command(*args))
        return self._reply()

    def _line(self):
        while True:
            at = self.buf.find(b"\r\n")
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[:at + 2]
                return line
            self._fill()

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n + 2]
        return data

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RedisError("Redis closed the connection")
        self.buf += chunk

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"unexpected RESP line {line!r}")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class RedisServer:
    """A throwaway redis-server on a loopback port: no persistence, stopped by PID.

    start() picks a free port the first time (retrying if another process takes it first) and
    reuses it afterwards, so kill() + start() is a restart on the same address. reserve_port()
    picks the port without starting, for a relay that must start with Redis down.
    """

    def __init__(self, extra_args=()):
        if not os.access(REDIS_SERVER, os.X_OK):
            raise unittest.SkipTest(f"{REDIS_SERVER} is not installed")
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="wsrelay-redis-")
        self.log_path = os.path.join(self._tmpdir.name, "redis.log")
        self._final_log = None

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}/0"

    def reserve_port(self):
        if self.port is None:
            self.port = free_port()
        return self.port

    def start(self, timeout=READY_TIMEOUT):
        fixed = self.port is not None
        last = None
        for _ in range(1 if fixed else 5):
            self.reserve_port()
            try:
                self._start_once(timeout)
                return self
            except RedisError as e:
                last = e
                if fixed or "in use" not in self.log().lower():
                    raise
                self.port = None
        raise last

    def _start_once(self, timeout):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", self._tmpdir.name, "--logfile", ""]
        args += self.extra_args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RedisError(f"redis-server exited with {code} during startup "
                                 f"(port {self.port})\n{self.log()}")
            try:
                with RespConnection(self.port, timeout=1.0) as conn:
                    if conn.command("PING") == "PONG":
                        return
            except (OSError, RedisError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RedisError(f"redis-server not answering PING on port {self.port} within "
                                 f"{timeout}s\n{self.log()}")
            time.sleep(0.02)  # bounded poll of connect+PING, with the deadline above

    def kill(self):
        """SIGKILL by PID (the relay sees its connections reset, as in a crash)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
            self.proc = None

    def stop(self):
        """SIGTERM by PID, SIGKILL if it does not exit in time."""
        if self.proc is not None:
            end_process(self.proc, STOP_TIMEOUT)
            self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            self._final_log = self.log()  # kept for the failure report, which comes later
            self._tmpdir.cleanup()

    def log(self):
        if self._final_log is not None:
            return self._final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def command(self, *args):
        with RespConnection(self.port) as conn:
            return conn.command(*args)

    async def acommand(self, *args):
        return await asyncio.to_thread(self.command, *args)

    def publish(self, channel, payload):
        """PUBLISH; returns how many Redis subscribers (relay workers) got it."""
        return self.command("PUBLISH", channel, payload)

    async def apublish(self, channel, payload):
        return await asyncio.to_thread(self.publish, channel, payload)

    def numsub(self, channel):
        reply = self.command("PUBSUB", "NUMSUB", channel)
        return reply[1]

    async def anumsub(self, channel):
        return await asyncio.to_thread(self.numsub, channel)


def redis_overrides(redis, extra=None):
    """Relay config overrides for broker.type redis against `redis` (short reconnect waits, so
    that outage tests recover quickly), then `extra`."""
    out = {
        "broker.type": "redis",
        "broker.redis.url": redis.url,
        "broker.redis.reconnect_min_ms": 20,
        "broker.redis.reconnect_max_ms": 200,
    }
    out.update(extra or {})
    return out


async def wait_until(check, timeout=IO_TIMEOUT, what="condition", interval=0.02):
    """Polls `check` (a sync or async callable) until it returns something truthy, and returns
    that; fails after `timeout`. For state that has no event to wait on (Redis' PUBSUB NUMSUB,
    /readyz): bounded, and never a fixed sleep."""
    deadline = time.monotonic() + timeout
    last = None
    is_async = asyncio.iscoroutinefunction(check)
    while True:
        # A plain callable (a blocking Redis query) runs in a thread, off the event loop.
        last = await check() if is_async else await asyncio.to_thread(check)
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)

# limits.rate off: for the load tests, whose few connections publish or subscribe far faster than
# one client may (docs/protocol.md "Rate limits"). They check delivery, not the limits.
UNMETERED = {
    "limits.rate.publish_per_second": 0,
    "limits.rate.subscribe_per_second": 0,
    "limits.rate.send_per_second": 0,
    "limits.rate.history_per_second": 0,
    "limits.rate.other_per_second": 0,
}


class RelayTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: self.relay(overrides) starts a server stopped (and its exit checked) at the
    end of the test; the server's log is printed when a test fails."""

    # Overrides under those of every relay the test case starts (e.g. UNMETERED).
    relay_defaults = {}

    def setUp(self):
        self._relays = []
        self._redis = []

    def start_redis(self, extra_args=(), start=True):
        """A RedisServer stopped at the end of the test, after the relays. With start=False only
        its port is chosen (see RedisServer.reserve_port)."""
        redis = RedisServer(extra_args)
        self._redis.append(redis)
        self.addCleanup(redis.close)
        if start:
            redis.start()
        else:
            redis.reserve_port()
        return redis

    async def start_relay(self, overrides=None, **kwargs):
        relay = Relay({**self.relay_defaults, **(overrides or {})}, **kwargs)
        await asyncio.to_thread(relay.start)
        self._relays.append(relay)
        return relay

    async def asyncTearDown(self):
        errors = []
        for relay in self._relays:
            try:
                await asyncio.to_thread(relay.close)
            except RelayError as e:
                errors.append(str(e))
        if errors:
            self.fail("\n".join(errors))

    def _print_logs(self):
        for relay in getattr(self, "_relays", []):
            print(f"\n----- wsrelay log (port {relay.port}) -----\n{relay.log()}\n-----")
        for redis in getattr(self, "_redis", []):
            print(f"\n----- redis-server log (port {redis.port}) -----\n{redis.log()}\n-----")

    def run(self, result=None):
        # Print the server log next to a failure; ctest --output-on-failure shows it.
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            self._print_logs()
        return out
