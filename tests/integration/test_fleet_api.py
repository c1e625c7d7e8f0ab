"""The server API's fleet commands (docs/api.md) on three relays sharing one real Redis: each call,
made to one relay, acts on connections held by all three; real clients count the frames and close
codes they get. Also memory mode (the one instance's workers), the hook answer's commands, and bad
input that is refused with a reason and changes nothing.

Users come from a stand-in app on the connect hook: it answers each connect with the user the client
named in an X-Test-User header, and records each connection's id."""

import contextlib
import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from relay_harness import (HOST, RelayTestCase, UNMETERED, closed_with, ping_barrier,
                           recv_json, redis_overrides, wait_until)

API_KEY = "fleet-api-test-key"
INSTANCES = 3


class HookApp:
    """A connect hook on a loopback port: sets the user from X-Test-User, records connection ids by
    user, and answers other events with what `answers` holds for their event (default {})."""

    def __init__(self):
        self.connections = {}  # user -> [connection id]
        self.answers = {}
        self.lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                answer = {}
                if body["event"] == "connect":
                    user = body.get("headers", {}).get("x-test-user")
                    answer = {"user": user}
                    with app.lock:
                        app.connections.setdefault(user, []).append(body["connection"])
                else:
                    answer = app.answers.get(body["event"], {})
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FleetApiTest(RelayTestCase):
    relay_defaults = {**UNMETERED, "api.key": API_KEY, "workers": 2}

    def setUp(self):
        super().setUp()
        self.app = HookApp()
        self.addCleanup(self.app.close)

    def hook(self, extra=None):
        return {"hook.url": self.app.url, "hook.events": ["connect", "message"],
                "hook.forward_headers": ["x-test-user"], **(extra or {})}

    async def start_fleet(self, count=INSTANCES):
        redis = self.start_redis()
        return [await self.start_relay(redis_overrides(redis, self.hook())) for _ in range(count)]

    async def connect(self, stack, relay, user):
        ws = await stack.enter_async_context(
            relay.ws_connect(extra_headers={"X-Test-User": user}))
        await ping_barrier(ws)  # admitted: the connect hook has answered
        return ws

    async def api(self, relay, path, body):
        status, _, data = await relay.ahttp_post(path, body, {"X-API-Key": API_KEY})
        return status, json.loads(data)

    async def still_open(self, clients):
        for ws in clients:
            await ping_barrier(ws)

    async def test_disconnect_a_user_on_every_instance(self):
        relays = await self.start_fleet()
        async with contextlib.AsyncExitStack() as stack:
            alice = [await self.connect(stack, r, "alice") for r in relays for _ in range(2)]
            bob = [await self.connect(stack, r, "bob") for r in relays]
            status, body = await self.api(relays[0], "/api/disconnect",
                                          {"user": "alice", "code": 4321, "reason": "bye"})
            self.assertEqual(200, status, body)
            self.assertEqual({"affected": 6, "workers": 2 * INSTANCES, "unanswered": 0}, body)
            for ws in alice:
                code, _ = await closed_with(ws)
                self.assertEqual(4321, code)
                self.assertEqual("bye", ws.close_reason)
            await self.still_open(bob)
            # Nobody left to disconnect: 200, none affected.
            status, body = await self.api(relays[1], "/api/disconnect", {"user": "alice"})
            self.assertEqual((200, 0), (status, body["affected"]))

    async def test_disconnect_one_connection_by_id(self):
        relays = await self.start_fleet()
        async with contextlib.AsyncExitStack() as stack:
            carol = [await self.connect(stack, r, "carol") for r in relays]
            ids = self.app.connections["carol"]
            self.assertEqual(3, len(set(ids)))
            for cid in ids:
                self.assertRegex(cid, r"^[a-z0-9.]{1,64}$")
            # Asked of the first relay, the last relay's connection closes, with the default code.
            status, body = await self.api(relays[0], "/api/disconnect", {"connection": ids[2]})
            self.assertEqual(200, status, body)
            self.assertEqual((1, 1, 0), (body["affected"], body["workers"], body["unanswered"]))
            code, _ = await closed_with(carol[2])
            self.assertEqual(4000, code)
            await self.still_open(carol[:2])
            # Gone now, or never was: 200 with none affected.
            for cid in (ids[2], "zzzzzzzz.1", "nonsense"):
                status, body = await self.api(relays[1], "/api/disconnect", {"connection": cid})
                self.assertEqual((200, 0), (status, body["affected"]), cid)

    async def test_subscribe_list_count_and_unsubscribe_across_instances(self):
        relays = await self.start_fleet()
        async with contextlib.AsyncExitStack() as stack:
            dave = [await self.connect(stack, r, "dave") for r in relays for _ in range(2)]
            erin = [await self.connect(stack, r, "erin") for r in relays]
            status, body = await self.api(relays[1], "/api/subscribe",
                                          {"user": "dave", "channels": ["room:1", "room:2"]})
            self.assertEqual((200, 6), (status, body["affected"]), body)
            for ws in dave:
                got = [await recv_json(ws), await recv_json(ws)]
                self.assertCountEqual([{"op": "subscribed", "channel": "room:1"},
                                       {"op": "subscribed", "channel": "room:2"}], got)
            # A message published anywhere reaches every one of them.
            status, _ = await self.api(relays[2], "/api/publish",
                                       {"channel": "room:1", "data": {"n": 1}})
            self.assertEqual(200, status)
            for ws in dave:
                self.assertEqual({"op": "message", "channel": "room:1", "data": {"n": 1}},
                                 await recv_json(ws))
            status, body = await self.api(relays[0], "/api/channel", {"channel": "room:1"})
            self.assertEqual(200, status)
            self.assertEqual({"channel": "room:1", "subscribers": 6, "workers": 2 * INSTANCES,
                              "unanswered": 0}, body)
            status, body = await self.api(relays[0], "/api/channels", {"pattern": "room:*"})
            self.assertEqual(200, status)
            self.assertEqual([{"channel": "room:1", "subscribers": 6},
                              {"channel": "room:2", "subscribers": 6}], body["channels"])
            self.assertFalse(body["truncated"])
            status, body = await self.api(relays[0], "/api/channels",
                                          {"pattern": "room:*", "limit": 1})
            self.assertEqual([{"channel": "room:1", "subscribers": 6}], body["channels"])
            self.assertTrue(body["truncated"])

            status, body = await self.api(relays[2], "/api/unsubscribe",
                                          {"user": "dave", "channel": "room:2"})
            self.assertEqual((200, 6), (status, body["affected"]), body)
            for ws in dave:
                self.assertEqual({"op": "unsubscribed", "channel": "room:2", "reason": "server"},
                                 await recv_json(ws))
            status, body = await self.api(relays[1], "/api/channel", {"channel": "room:2"})
            self.assertEqual(0, body["subscribers"])
            # erin heard nothing of it all.
            for ws in erin:
                await ping_barrier(ws)

    async def test_batch_runs_in_order(self):
        relays = await self.start_fleet()
        async with contextlib.AsyncExitStack() as stack:
            frank = [await self.connect(stack, r, "frank") for r in relays]
            status, body = await self.api(relays[0], "/api/batch", {"commands": [
                {"method": "subscribe", "params": {"user": "frank", "channel": "b"}},
                {"method": "channel", "params": {"channel": "b"}},
                {"method": "disconnect", "params": {"user": "frank", "code": 4000, "both": 1,
                                                    "connection": "x.1"}},
                {"method": "disconnect", "params": {"user": "frank", "code": 4100}},
            ]})
            self.assertEqual(200, status, body)
            replies = body["replies"]
            self.assertEqual([200, 200, 400, 200], [r["status"] for r in replies])
            self.assertEqual(3, replies[0]["body"]["affected"])
            self.assertEqual(3, replies[1]["body"]["subscribers"])
            self.assertEqual({"error": "give user or connection, not both"}, replies[2]["body"])
            self.assertEqual(3, replies[3]["body"]["affected"])
            for ws in frank:
                code, frames = await closed_with(ws)
                self.assertEqual(4100, code)
                self.assertEqual([{"op": "subscribed", "channel": "b"}],
                                 [json.loads(f) for f in frames])

    async def test_bad_input_is_refused_and_changes_nothing(self):
        relays = await self.start_fleet(1)
        relay = relays[0]
        async with contextlib.AsyncExitStack() as stack:
            gina = [await self.connect(stack, relay, "gina") for _ in range(2)]
            oversized = {"commands": [{"method": "channels"}] * 101}
            cases = [
                ("/api/disconnect", "{not json", "body must be a JSON object"),
                ("/api/disconnect", "[]", "body must be a JSON object"),
                ("/api/disconnect", {}, "missing user or connection"),
                ("/api/disconnect", {"user": "gina", "connection": "a.1"},
                 "give user or connection, not both"),
                ("/api/disconnect", {"user": "gina", "code": 1000},
                 "code must be an integer 4000..4999"),
                ("/api/disconnect", {"user": "gina", "code": 5000},
                 "code must be an integer 4000..4999"),
                ("/api/disconnect", {"user": "gina", "reason": "r" * 124},
                 "reason must be a string of at most 123 bytes"),
                ("/api/disconnect", '{"user":"gina","user":"gina"}', "duplicate field: user"),
                ("/api/subscribe", {"user": "gina", "channel": "bad name"},
                 "invalid channel name"),
                ("/api/unsubscribe", {"user": "gina"},
                 "channel, or channels: an array of 1..100 channel names"),
                ("/api/channels", {"limit": 0}, "limit must be an integer 1..1000"),
                ("/api/channel", {}, "missing or invalid channel"),
                ("/api/batch", oversized, "commands must be an array of 1..100 commands"),
                ("/api/batch", {"commands": [{"method": "disconnect",
                                              "params": {"user": "gina"}},
                                             {"method": "nope"}]},
                 "commands[1]: method must be one of disconnect, subscribe, unsubscribe, "
                 "channels, channel"),
            ]
            for path, body, reason in cases:
                with self.subTest(path=path, body=str(body)[:60]):
                    self.assertEqual((400, {"error": reason}), await self.api(relay, path, body))
            # A wrong key: 401, nothing done.
            status, _, _ = await relay.ahttp_post("/api/disconnect", {"user": "gina"},
                                                  {"X-API-Key": "wrong"})
            self.assertEqual(401, status)
            # Nothing happened to gina: no frame, still open.
            await self.still_open(gina)
            status, body = await self.api(relay, "/api/disconnect", {"user": "nobody"})
            self.assertEqual((200, 0), (status, body["affected"]))

    async def test_memory_mode_acts_on_this_instance(self):
        relay = await self.start_relay(self.hook())
        async with contextlib.AsyncExitStack() as stack:
            hank = [await self.connect(stack, relay, "hank") for _ in range(4)]
            ivy = await self.connect(stack, relay, "ivy")
            status, body = await self.api(relay, "/api/subscribe", {"user": "hank",
                                                                    "channel": "m"})
            self.assertEqual((200, 4, 2, 0), (status, body["affected"], body["workers"],
                                              body["unanswered"]))
            for ws in hank:
                self.assertEqual({"op": "subscribed", "channel": "m"}, await recv_json(ws))
            status, body = await self.api(relay, "/api/disconnect", {"user": "hank",
                                                                     "code": 4999})
            self.assertEqual((200, 4), (status, body["affected"]))
            for ws in hank:
                self.assertEqual(4999, (await closed_with(ws))[0])
            await ping_barrier(ivy)

    async def test_hook_answer_commands_act_on_the_fleet(self):
        relays = await self.start_fleet(2)
        async with contextlib.AsyncExitStack() as stack:
            old = [await self.connect(stack, r, "jack") for r in relays]
            sender = await self.connect(stack, relays[1], "kim")
            self.app.answers["message"] = {"commands": [
                {"method": "disconnect", "params": {"user": "jack", "code": 4409,
                                                    "reason": "elsewhere"}},
                {"method": "bogus"}]}
            await sender.send(json.dumps({"op": "send", "id": 1, "data": {}}))
            self.assertEqual({"op": "ack", "id": 1}, await recv_json(sender))
            for ws in old:
                self.assertEqual(4409, (await closed_with(ws))[0])
            await wait_until(lambda: "commands[1] ignored" in relays[1].log(),
                             what="the ignored command logged")


if __name__ == "__main__":
    unittest.main()
