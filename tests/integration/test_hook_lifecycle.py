"""The events that tell the app how a connection's subscriptions end (docs/hook.md#events):
`unsubscribe`, whoever ended the subscription (the client, a hook answer, a token refresh), and
the `disconnect` that lists the channels a closing connection was in and the reason it was given.
The app is hook_gate_backend.py, a process of its own that records every request in arrival order
and can hold its answers to messages; the clients are real WebSocket clients."""

import unittest

from auth_tokens import AuthTestCase, auth_config, claims, connect
from hook_gate_backend import GateBackend
from relay_harness import (RelayTestCase, closed_with, metric, ping_barrier, recv_json, request,
                           send_json, subscribe)

EVENTS = ["connect", "message", "disconnect", "unsubscribe"]


def story(events, connection):
    """What the app heard of one connection, in arrival order, without its connect."""
    out = []
    for e in events:
        if e["connection"] != connection or e["event"] == "connect":
            continue
        if e["event"] == "message":
            out.append(("message", e["n"]))
        elif e["event"] == "unsubscribe":
            out.append(("unsubscribe", e["channel"], e["reason"]))
        else:
            out.append(("disconnect", e["code"], e["reason"], sorted(e["channels"])))
    return out


async def open_connection(relay, backend, connector=None):
    """A client connection and the id the app knows it by (its connect event)."""
    before = {e["connection"] for e in await backend.events()}
    ws = await (connector or relay.ws_connect)().__aenter__()
    got = await backend.wait_events(
        lambda evs: any(e["event"] == "connect" and e["connection"] not in before for e in evs),
        "a connect event")
    return ws, [e["connection"] for e in got
                if e["event"] == "connect" and e["connection"] not in before][0]


async def wait_story(backend, connection, done, what):
    got = await backend.wait_events(lambda evs: done(story(evs, connection)), what)
    return story(got, connection)


def disconnected(entries):
    return any(x[0] == "disconnect" for x in entries)


class HookLifecycleTest(RelayTestCase):
    async def start_pair(self, extra=None):
        backend = GateBackend()
        self.addCleanup(backend.stop)
        config = {"hook.url": backend.url(), "hook.events": EVENTS,
                  "hook.routes": ["chat:*=hook"]}
        config.update(extra or {})
        return backend, await self.start_relay(config)

    async def test_a_client_unsubscribe_is_told_and_the_disconnect_lists_what_is_left(self):
        backend, relay = await self.start_pair()
        ws, conn = await open_connection(relay, backend)
        for i, channel in enumerate(["a", "b", "c"]):
            await subscribe(ws, channel, id=i + 1)
        # Acknowledged at once: the client does not wait for the app.
        self.assertEqual({"op": "ack", "id": 9},
                         await request(ws, {"op": "unsubscribe", "channel": "b", "id": 9}))
        not_in = await request(ws, {"op": "unsubscribe", "channel": "b", "id": 10})
        self.assertEqual(409, not_in["code"])
        await ws.close()
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("unsubscribe", "b", "client"), ("disconnect", 1000, "", ["a", "c"])],
                         got)
        m = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_hook_requests_total", event="disconnect",
                             result="ok") == 1, what="the disconnect answered")
        self.assertEqual(1, metric(m, "wsrelay_hook_requests_total", event="unsubscribe",
                                   result="ok"))

    async def test_a_hook_answer_unsubscribe_follows_its_message_and_the_app_close_says_why(self):
        backend, relay = await self.start_pair()
        ws, conn = await open_connection(relay, backend)
        await subscribe(ws, "room", id=1)
        await subscribe(ws, "lobby", id=2)
        await send_json(ws, {"op": "send", "data": {"n": 1, "answer": {"unsubscribe": ["room"]}},
                             "id": 3})
        self.assertEqual({"op": "unsubscribed", "channel": "room", "reason": "hook"},
                         await recv_json(ws))
        self.assertEqual({"op": "ack", "id": 3}, await recv_json(ws))
        await send_json(ws, {"op": "send", "id": 4, "data": {
            "n": 2, "answer": {"disconnect": {"code": 4100, "reason": "moved elsewhere"}}}})
        code, _ = await closed_with(ws)
        self.assertEqual(4100, code)
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("message", 1), ("unsubscribe", "room", "hook"), ("message", 2),
                          ("disconnect", 4100, "moved elsewhere", ["lobby"])], got)

    async def test_events_keep_the_connections_order_behind_a_slow_app(self):
        backend, relay = await self.start_pair()
        ws, conn = await open_connection(relay, backend)
        await subscribe(ws, "x", id=1)
        await subscribe(ws, "y", id=2)
        await backend.hold()
        await send_json(ws, {"op": "publish", "channel": "chat:r", "data": {"n": 1}})
        await backend.wait_events(lambda evs: [("message", 1)] == story(evs, conn),
                                  "message 1 held at the app")
        await send_json(ws, {"op": "publish", "channel": "chat:r", "data": {"n": 2}})
        await send_json(ws, {"op": "unsubscribe", "channel": "x", "id": 5})
        await send_json(ws, {"op": "publish", "channel": "chat:r", "data": {"n": 3}})
        # The unsubscribe is acknowledged while the app still holds the first message.
        self.assertEqual([{"op": "ack", "id": 5}], await ping_barrier(ws))
        self.assertEqual(1, await backend.held())
        await ws.close()
        await relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 0,
                                what="the connection closed at the relay")
        await backend.release()
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("message", 1), ("message", 2), ("unsubscribe", "x", "client"),
                          ("message", 3), ("disconnect", 1000, "", ["y"])], got)

    async def test_without_the_event_listed_nothing_is_sent_but_the_disconnect_lists_channels(self):
        backend, relay = await self.start_pair({"hook.events": ["connect", "disconnect"]})
        ws, conn = await open_connection(relay, backend)
        await subscribe(ws, "a", id=1)
        await subscribe(ws, "b", id=2)
        await request(ws, {"op": "unsubscribe", "channel": "a", "id": 3})
        await ws.close()
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("disconnect", 1000, "", ["b"])], got)

    async def test_a_relay_close_gives_its_reason(self):
        backend, relay = await self.start_pair({"limits.max_bad_commands": 1})
        ws, conn = await open_connection(relay, backend)
        await subscribe(ws, "a", id=1)
        await ws.send("not json")
        await ws.send("not json either")
        code, _ = await closed_with(ws)
        self.assertEqual(4500, code)
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("disconnect", 4500, "too many bad commands", ["a"])], got)


class HookLifecycleTokenTest(AuthTestCase):
    async def test_a_refresh_that_drops_a_grant_is_told_with_reason_token(self):
        backend = GateBackend()
        self.addCleanup(backend.stop)
        relay = await self.start_relay(auth_config({
            "workers": 1, "hook.url": backend.url(), "hook.events": EVENTS}))
        token = self.tok("HS256", claims(channels=["room:1", "room:2"]))
        ws, conn = await open_connection(relay, backend, lambda: connect(relay, token))
        self.addAsyncCleanup(ws.close)
        await subscribe(ws, "room:1", id=1)
        await subscribe(ws, "room:2", id=2)
        await send_json(ws, {"op": "refresh", "id": 3,
                             "token": self.tok("HS256", claims(channels=["room:2"]))})
        self.assertEqual({"op": "unsubscribed", "channel": "room:1", "reason": "forbidden"},
                         await recv_json(ws))
        self.assertEqual({"op": "ack", "id": 3}, await recv_json(ws))
        await ws.close()
        got = await wait_story(backend, conn, disconnected, "the disconnect")
        self.assertEqual([("unsubscribe", "room:1", "token"),
                          ("disconnect", 1000, "", ["room:2"])], got)
        users = {e["user"] for e in await backend.events(conn)}
        self.assertEqual({"alice"}, users)


if __name__ == "__main__":
    unittest.main()
