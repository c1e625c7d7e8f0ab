"""Subscriptions the app grants through the hook (docs/auth.md, "Live expiry and refresh"): a token
refresh re-checks only the channels the client subscribed to itself; the app's grants stay until
the connection leaves them. The app is hook_gate_backend.py, a process of its own: its connect
answer subscribes the client, and an RPC answers with the `answer` its data carries."""

import unittest

from auth_tokens import AuthTestCase, auth_config, claims, connect
from hook_gate_backend import GateBackend
from relay_harness import ping_barrier, recv_json, request, send_json, subscribe

GRANTED = "private:room42"


class AppGrantsTest(AuthTestCase):
    async def asyncSetUp(self):
        self.app = GateBackend()
        self.addCleanup(self.app.stop)
        await self.app.script("connect", {"subscribe": [GRANTED]})
        # One worker: API publishes reach the client in the order sent, which proves absences.
        self.relay = await self.start_relay(auth_config({
            "workers": 1,
            "hook.url": self.app.url(),
            "hook.events": ["connect", "message", "disconnect"],
        }))

    async def open(self, token):
        ws = await connect(self.relay, token).__aenter__()
        self.addAsyncCleanup(ws.close)
        self.assertEqual({"op": "subscribed", "channel": GRANTED}, await recv_json(ws))
        return ws

    async def assertReceives(self, ws, channel, data):
        await self.api_publish(self.relay, channel, data)
        self.assertEqual({"op": "message", "channel": channel, "data": data}, await recv_json(ws))

    async def refresh(self, ws, token, id):
        """Refreshes; returns the frames besides the ack, up to a ping barrier."""
        await send_json(ws, {"op": "refresh", "token": token, "id": id})
        frames = await ping_barrier(ws)
        self.assertIn({"op": "ack", "id": id}, frames)
        return [f for f in frames if f != {"op": "ack", "id": id}]

    @staticmethod
    async def rpc(ws, answer, id):
        """A `send` whose answer from the app is `answer`."""
        await send_json(ws, {"op": "send", "data": {"answer": answer}, "id": id})

    async def grant(self, ws, channel, id):
        await self.rpc(ws, {"subscribe": [channel], "reply": {"granted": channel}}, id)
        # {"op":"subscribed"} waits until the subscription is live everywhere; the reply does not.
        frames = [await recv_json(ws), await recv_json(ws)]
        self.assertCountEqual([{"op": "subscribed", "channel": channel},
                               {"op": "reply", "id": id, "data": {"granted": channel}}], frames)

    async def test_connect_grant_survives_a_refresh_with_the_same_token(self):
        token = self.tok("HS256", claims(channels=["room:1"]))
        ws = await self.open(token)
        await subscribe(ws, "room:1", id=1)
        await self.assertReceives(ws, GRANTED, "before")

        self.assertEqual([], await self.refresh(ws, token, 2))
        await self.assertReceives(ws, GRANTED, "after")
        await self.assertReceives(ws, "room:1", "still mine")

        # A narrower token ends what the client subscribed to itself, not the app's grant.
        narrow = self.tok("HS256", claims(channels=[]))
        self.assertEqual([{"op": "unsubscribed", "channel": "room:1", "reason": "forbidden"}],
                         await self.refresh(ws, narrow, 3))
        await self.api_publish(self.relay, "room:1", "must not arrive")
        await self.assertReceives(ws, GRANTED, "granted still")
        # The token still does not let the client subscribe there itself.
        self.assertEqual({"op": "error", "id": 4, "code": 403,
                          "reason": "not allowed to subscribe to this channel"},
                         await request(ws, {"op": "subscribe", "channel": GRANTED, "id": 4}))
        self.assertNoTokenLogged(self.relay)

    async def test_hook_answer_grant_survives_a_refresh(self):
        token = self.tok("HS256", claims(channels=["room:1"]))
        ws = await self.open(token)
        await self.grant(ws, "private:room7", 1)
        self.assertEqual([], await self.refresh(ws, token, 2))
        await self.assertReceives(ws, "private:room7", "after")
        await self.assertReceives(ws, GRANTED, "and the connect grant")

    async def test_leaving_a_granted_channel_ends_the_grant(self):
        # The token allows room:* so the client can rejoin on its own; the narrow one does not.
        wide = self.tok("HS256", claims(channels=["room:*"]))
        narrow = self.tok("HS256", claims(channels=[]))
        ws = await self.open(wide)

        # The client leaves: its own subscribe afterwards is the token's, and a refresh checks it.
        await self.grant(ws, "room:a", 1)
        self.assertEqual({"op": "ack", "id": 2},
                         await request(ws, {"op": "unsubscribe", "channel": "room:a", "id": 2}))
        await subscribe(ws, "room:a", id=3)
        # The app revokes: the same.
        await self.grant(ws, "room:b", 4)
        await self.rpc(ws, {"unsubscribe": ["room:b"], "reply": {"revoked": "room:b"}}, 5)
        self.assertEqual({"op": "unsubscribed", "channel": "room:b", "reason": "hook"},
                         await recv_json(ws))
        self.assertEqual({"op": "reply", "id": 5, "data": {"revoked": "room:b"}},
                         await recv_json(ws))
        await subscribe(ws, "room:b", id=6)
        # A channel the client was in already, granted by the app: the app's from now on.
        await subscribe(ws, "room:c", id=7)
        await self.rpc(ws, {"subscribe": ["room:c"], "reply": {"granted": "room:c"}}, 8)
        self.assertEqual({"op": "reply", "id": 8, "data": {"granted": "room:c"}},
                         await recv_json(ws))

        left = await self.refresh(ws, narrow, 9)
        self.assertCountEqual([{"op": "unsubscribed", "channel": c, "reason": "forbidden"}
                               for c in ("room:a", "room:b")], left)
        for channel in ("room:a", "room:b"):
            await self.api_publish(self.relay, channel, "must not arrive")
        await self.assertReceives(ws, "room:c", "kept")
        await self.assertReceives(ws, GRANTED, "kept too")
        self.assertNoTokenLogged(self.relay)


if __name__ == "__main__":
    unittest.main()
