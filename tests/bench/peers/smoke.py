#!/usr/bin/python3
"""Smoke check of two running instances of one peer against the contract in README.md.

  /usr/bin/python3 tests/bench/peers/smoke.py KIND PORT_A PORT_B REDIS_PORT

(Debian's python3 for python3-websockets.) Three clients on channel x (two on A, one on B) and one
on channel y: each message published on x (Redis PUBLISH, or POST /pub to A for nchan) must reach
every x client exactly once, in order and byte for byte, and no y client; a frame a client sends
on x must reach every x client (not for floor, which drops client frames). Then 200 connections
open and go away quickly (clean closes, aborts, half-sent upgrades) and a fresh round must still
deliver. For wsrelay the clients speak its protocol (subscribe, then {"op":"message"} frames).
Exit 0 when everything held; bounded by a 60 s deadline.
"""

import asyncio
import json
import os
import socket
import sys
import urllib.request

import websockets

KIND, PORT_A, PORT_B, REDIS_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def resp_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def publish(channel, payload: bytes):
    if KIND == "nchan":
        req = urllib.request.Request(f"http://127.0.0.1:{PORT_A}/pub?channel={channel}",
                                     data=payload, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()
        return
    with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=5) as s:
        s.sendall(resp_command("PUBLISH", channel, payload))
        reply = s.recv(64)
        assert reply.startswith(b":"), reply


class Client:
    def __init__(self, port, channel):
        self.port, self.channel, self.got = port, channel, []
        self.new = asyncio.Event()

    async def open(self):
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws?channel={self.channel}",
                                           max_size=None, compression=None)
        if KIND == "wsrelay":
            await self.ws.send(json.dumps({"op": "subscribe", "channel": self.channel, "id": 1}))
            ack = json.loads(await self.ws.recv())
            assert ack.get("op") == "ack", ack
        self.task = asyncio.create_task(self.reader())

    async def reader(self):
        try:
            async for frame in self.ws:
                if KIND == "wsrelay":
                    m = json.loads(frame)
                    if m.get("op") != "message":
                        continue
                    frame = json.dumps(m["data"])
                self.got.append(frame.encode() if isinstance(frame, str) else b"BINARY:" + frame)
                self.new.set()
        except websockets.ConnectionClosed:
            pass

    async def wait_for(self, payload, timeout):
        async def loop():
            while payload not in self.got:
                self.new.clear()
                await self.new.wait()
        await asyncio.wait_for(loop(), timeout)


def body(tag):
    # wsrelay delivers JSON as data and wraps anything else; JSON strings keep the check uniform.
    return json.dumps(tag).encode() if KIND == "wsrelay" else tag.encode()


async def warm_up(clients, channel):
    """Subscribing is asynchronous: publish until every client has seen one warm-up."""
    for i in range(100):
        tag = body(f"warm-{i}")
        publish(channel, tag)
        try:
            await asyncio.gather(*(c.wait_for(tag, 0.2) for c in clients))
            return True
        except asyncio.TimeoutError:
            continue
    return False


async def delivery_round(label):
    xs = [Client(PORT_A, "x"), Client(PORT_A, "x"), Client(PORT_B, "x")]
    y = Client(PORT_B, "y")
    for c in xs + [y]:
        await c.open()
    check(await warm_up(xs, "x"), f"{label}: every x client subscribed")
    check(await warm_up([y], "y"), f"{label}: the y client subscribed")
    for c in xs + [y]:
        c.got.clear()
    nonce = os.urandom(4).hex()
    payloads = [body(f"m{i}-{nonce}") for i in range(5)]
    payloads.append(body(f"spaces and ünïcödé {{\"k\":[1,2]}} {nonce}"))
    payloads.append(body("L" * 70000 + nonce))  # 64-bit frame length
    for p in payloads:
        publish("x", p)
    end = body(f"end-{nonce}")
    publish("x", end)
    try:
        await asyncio.gather(*(c.wait_for(end, 5) for c in xs))
    except asyncio.TimeoutError:
        pass
    for i, c in enumerate(xs):
        check(c.got == payloads + [end],
              f"{label}: x client {i} got each message once, in order, unchanged "
              f"({len(c.got)} frames)")
    if KIND != "floor":
        sent = body(f"from-client-{nonce}")
        if KIND == "wsrelay":
            await xs[0].ws.send(json.dumps({"op": "publish", "channel": "x",
                                            "data": json.loads(sent)}))
        else:
            await xs[0].ws.send(sent.decode())
        try:
            await asyncio.gather(*(c.wait_for(sent, 5) for c in xs))
        except asyncio.TimeoutError:
            pass
        for i, c in enumerate(xs):
            check(c.got.count(sent) == 1, f"{label}: x client {i} got the client-sent frame once")
    check(y.got == [], f"{label}: the y client got nothing from x ({len(y.got)} frames)")
    for c in xs + [y]:
        await c.ws.close()
        await c.task


async def churn(n=200, at_once=50):
    sem = asyncio.Semaphore(at_once)
    errors = []

    async def one(i):
        async with sem:
            port = PORT_A if i % 2 == 0 else PORT_B
            try:
                if i % 4 == 3:
                    # Half an upgrade request, then gone.
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.write(b"GET /ws?channel=churn HTTP/1.1\r\nHost: x\r\nUpgr")
                    await w.drain()
                    w.close()
                    return
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws?channel=churn-{i % 7}", compression=None)
                if i % 4 == 0:
                    await ws.close()
                else:
                    ws.transport.abort()
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f"{i}: {e!r}")

    await asyncio.gather(*(one(i) for i in range(n)))
    check(not errors, f"200 connections opened and dropped ({len(errors)} errors: {errors[:3]})")


async def main():
    await delivery_round("round 1")
    await churn()
    await delivery_round("after churn")


try:
    asyncio.run(asyncio.wait_for(main(), 60))
except asyncio.TimeoutError:
    check(False, "finished within 60 s")
print(f"smoke {KIND}: {'FAILED' if failures else 'passed'}")
sys.exit(1 if failures else 0)
