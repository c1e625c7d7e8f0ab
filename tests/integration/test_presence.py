"""Presence (docs/protocol.md "Presence", docs/scaling.md "Presence"): who is in a channel,
fleet-wide. Three relays on one real Redis, real clients on each: the members of every instance
in the client's presence command and in POST /api/presence; a relay killed with SIGKILL loses its
members within presence.ttl_ms; join/leave frames across instances, and none above the member
cap; the in-process broker; refusals."""

import asyncio
import contextlib
import functools
import json
import signal
import time
import unittest

import jwt

from relay_harness import (RelayTestCase, UNMETERED, ping_barrier, recv_json, redis_overrides,
                           request, send_json, subscribe, wait_until)

KEY = "presence-test-key"
SECRET = "presence-test-secret-of-at-least-32-bytes"
TTL_MS = 2000
REFRESH_MS = 400
CHANNELS = [
    {"pattern": "room:*", "presence": True, "join_leave": True},
    {"pattern": "quiet:*", "presence": True},
    {"pattern": "capped:*", "presence": True, "join_leave": True},
]
CONFIG = {
    "api.key": KEY,
    "channels": CHANNELS,
    "presence.ttl_ms": TTL_MS,
    "presence.refresh_ms": REFRESH_MS,
    "presence.max_join_leave_members": 3,
    "workers": 2,
}
AUTH = {
    "auth.enabled": True,
    "auth.jwt.secret": SECRET,
    "auth.permissions.subscribe": ["room:*", "quiet:*", "capped:*"],
}


def token(user, info=None):
    claims = {"sub": user, "exp": int(time.time()) + 600}
    if info is not None:
        claims["info"] = info
    return jwt.encode(claims, SECRET, algorithm="HS256")


def connect(relay, user=None, info=None):
    if user is None:
        return relay.ws_connect()
    return relay.ws_connect(extra_headers={"Authorization": f"Bearer {token(user, info)}"})


async def api(relay, path, body):
    status, _, data = await relay.ahttp_post(path, body, {"X-API-Key": KEY})
    return status, json.loads(data)


async def api_members(relay, channel):
    status, body = await api(relay, "/api/presence", {"channel": channel})
    if status != 200:
        raise AssertionError(f"/api/presence answered {status} {body}")
    return body["members"]


def connections(members):
    return sorted(m["connection"] for m in members)


async def next_op(ws, op, skip_connection=None, timeout=5.0):
    """The next frame with `op`, skipping others, and those about `skip_connection` (a client's
    own join)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv_json(ws, timeout=max(0.01, deadline - time.monotonic()))
        if frame.get("op") != op:
            continue
        if skip_connection is not None and frame["member"]["connection"] == skip_connection:
            continue
        return frame


async def ask(ws, obj):
    """Sends a command with an id and returns its reply, skipping join/leave frames."""
    await send_json(ws, obj)
    while True:
        frame = await recv_json(ws)
        if frame.get("op") in ("join", "leave"):
            continue
        if frame.get("id") != obj.get("id"):
            raise AssertionError(f"expected the reply to {obj}, got {frame}")
        return frame


async def only_member(relay, channel):
    """The connection id of the one member of `channel`."""
    members = await api_members(relay, channel)
    if len(members) != 1:
        raise AssertionError(f"expected one member of {channel}, got {members}")
    return members[0]["connection"]


class PresenceTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def start_fleet(self, redis, extra=None, count=3, **kwargs):
        return [await self.start_relay(redis_overrides(redis, {**CONFIG, **(extra or {})}),
                                       **kwargs) for _ in range(count)]

    async def test_members_of_every_instance_in_the_command_and_the_api(self):
        redis = self.start_redis()
        relays = await self.start_fleet(redis, AUTH)
        users = ["alice", "bob", "alice"]
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for i, (relay, user) in enumerate(zip(relays, users)):
                ws = await stack.enter_async_context(connect(relay, user, {"n": i}))
                await subscribe(ws, "quiet:a")
                clients.append(ws)
            members = await api_members(relays[0], "quiet:a")
            self.assertEqual(3, len(members))
            # One id per connection, of three different instances.
            self.assertEqual(3, len({m["connection"].split(".")[0] for m in members}))
            self.assertEqual(sorted([("alice", {"n": 0}), ("bob", {"n": 1}), ("alice", {"n": 2})],
                                    key=json.dumps),
                             sorted(((m["user"], m["info"]) for m in members), key=json.dumps))
            # The client's command on another instance sees the same members.
            reply = await request(clients[2], {"op": "presence", "channel": "quiet:a", "id": 7})
            self.assertEqual("presence", reply["op"])
            self.assertEqual("quiet:a", reply["channel"])
            self.assertEqual(connections(members), connections(reply["members"]))
            self.assertNotIn("truncated", reply)
            self.assertEqual((200, {"clients": 3, "users": 2}),
                             await api(relays[1], "/api/presence_stats", {"channel": "quiet:a"}))
            # Unsubscribing and closing leave; the rest stay.
            await request(clients[0], {"op": "unsubscribe", "channel": "quiet:a", "id": 2})
            await clients[1].close()
            await wait_until(functools.partial(self.members_count, relays[2], "quiet:a", 1),
                             what="one member left")
            left = await api_members(relays[2], "quiet:a")
            self.assertEqual({"n": 2}, left[0]["info"])

    async def test_members_of_a_killed_relay_expire_within_the_ttl(self):
        redis = self.start_redis()
        relays = await self.start_fleet(redis, count=2)
        victim = await self.start_relay(redis_overrides(redis, CONFIG), check_exit=False)
        async with contextlib.AsyncExitStack() as stack:
            for relay in relays + [victim] + [victim]:
                ws = await stack.enter_async_context(connect(relay))
                await subscribe(ws, "quiet:k")
            self.assertEqual(4, len(await api_members(relays[0], "quiet:k")))
            # Refreshes keep the living instances' members past the ttl.
            victim.signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await asyncio.to_thread(victim.wait)

            async def gone():
                return len(await api_members(relays[1], "quiet:k")) == 2
            await wait_until(gone, timeout=TTL_MS / 1000 + 5, what="the killed relay's members gone",
                             interval=0.05)
            took = time.monotonic() - killed_at
            # A member expires ttl after its last refresh, at most ttl after the kill; one API
            # round trip of slack.
            self.assertLess(took, TTL_MS / 1000 + 0.5)
            await asyncio.sleep(TTL_MS / 1000)  # past a full ttl: the living ones are refreshed
            self.assertEqual(2, len(await api_members(relays[0], "quiet:k")))

    async def test_join_and_leave_frames_across_instances(self):
        redis = self.start_redis()
        relays = await self.start_fleet(redis, count=2)
        async with connect(relays[0]) as watcher:
            await subscribe(watcher, "room:j")
            own = await only_member(relays[1], "room:j")
            async with connect(relays[1]) as joiner:
                await subscribe(joiner, "room:j")
                joined = await next_op(watcher, "join", skip_connection=own)
                self.assertEqual("room:j", joined["channel"])
                self.assertIsNone(joined["member"]["user"])
                theirs = connections(await api_members(relays[0], "room:j"))
                self.assertIn(joined["member"]["connection"], theirs)
            left = await next_op(watcher, "leave", skip_connection=own)
            self.assertEqual(joined["member"], left["member"])
            # A channel without join_leave sends none.
            await subscribe(watcher, "quiet:j", id=2)
            async with connect(relays[1]) as other:
                await subscribe(other, "quiet:j")
                await wait_until(functools.partial(self.members_count, relays[0], "quiet:j", 2),
                                 what="both in quiet:j")
            for frame in await ping_barrier(watcher):
                self.assertNotIn(frame.get("op"), ("join", "leave"), frame)

    async def members_count(self, relay, channel, n):
        return len(await api_members(relay, channel)) == n

    async def test_no_join_frames_above_the_member_cap(self):
        redis = self.start_redis()
        relays = await self.start_fleet(redis, count=2)
        async with contextlib.AsyncExitStack() as stack:
            watcher = await stack.enter_async_context(connect(relays[0]))
            await subscribe(watcher, "capped:c")
            own = await only_member(relays[1], "capped:c")
            for _ in range(2):
                ws = await stack.enter_async_context(connect(relays[1]))
                await subscribe(ws, "capped:c")
                await next_op(watcher, "join", skip_connection=own)
            # The fourth member makes four, over presence.max_join_leave_members (3).
            fourth = await stack.enter_async_context(connect(relays[1]))
            await subscribe(fourth, "capped:c")
            await wait_until(functools.partial(self.members_count, relays[0], "capped:c", 4),
                             what="four members")
            for frame in await ping_barrier(watcher):
                self.assertFalse(frame.get("op") == "join" and frame["member"]["connection"] != own,
                                 frame)

    async def test_memory_broker(self):
        relay = await self.start_relay(CONFIG)
        async with connect(relay) as a, connect(relay) as b:
            await subscribe(a, "room:m")
            own = await only_member(relay, "room:m")
            await subscribe(b, "room:m")
            joined = await next_op(a, "join", skip_connection=own)
            reply = await ask(a, {"op": "presence", "channel": "room:m", "id": 3})
            self.assertEqual(2, len(reply["members"]))
            self.assertIn(joined["member"], reply["members"])
            self.assertEqual((200, {"clients": 2, "users": 0}),
                             await api(relay, "/api/presence_stats", {"channel": "room:m"}))
        await wait_until(functools.partial(self.members_count, relay, "room:m", 0), what="both gone")

    async def test_refusals(self):
        relay = await self.start_relay({**CONFIG, "presence.max_members": 1})
        async with connect(relay) as ws, connect(relay) as other:
            reply = await request(ws, {"op": "presence", "channel": "plain", "id": 1})
            self.assertEqual({"op": "error", "id": 1, "code": 405,
                              "reason": "no presence on this channel"}, reply)
            reply = await request(ws, {"op": "presence", "id": 2})
            self.assertEqual(400, reply["code"])
            # A presence channel nobody is in.
            reply = await ask(ws, {"op": "presence", "channel": "room:empty", "id": 3})
            self.assertEqual([], reply["members"])
            # Cut at presence.max_members.
            await subscribe(ws, "quiet:t")
            await subscribe(other, "quiet:t")
            reply = await request(ws, {"op": "presence", "channel": "quiet:t", "id": 4})
            self.assertEqual(1, len(reply["members"]))
            self.assertIs(True, reply["truncated"])
        self.assertEqual((405, {"error": "no presence on this channel"}),
                         await api(relay, "/api/presence", {"channel": "plain"}))
        self.assertEqual((200, {"channel": "room:none", "members": []}),
                         await api(relay, "/api/presence", {"channel": "room:none"}))
        self.assertEqual((200, {"clients": 0, "users": 0}),
                         await api(relay, "/api/presence_stats", {"channel": "room:none"}))
        for body in ("{", "[]", {"channel": 5}, {"channel": "bad channel"}, {}):
            status, answer = await api(relay, "/api/presence", body)
            self.assertEqual(400, status, body)
            self.assertIn("error", answer)
        status, _, data = await relay.ahttp_post("/api/presence", {"channel": "room:a"})
        self.assertEqual(401, status)
        status, answer = await api(relay, "/api/presence_stats",
                                   '{"channel":"room:a","channel":"room:b"}')
        self.assertEqual((400, {"error": "duplicate field: channel"}), (status, answer))


if __name__ == "__main__":
    unittest.main()
