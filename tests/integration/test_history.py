"""Channels with history end to end, on the relay side: positions in messages and acks, a subscribe
that resumes from a position, the history command and POST /api/history (in process), and what a
channel's members get after a Redis gap: the missed messages and no notice while the history holds
them, a notice with the new position once the history is gone (Redis restarted without
persistence)."""

import json
import unittest

from relay_harness import (RelayTestCase, metric, ping_barrier, recv_json, redis_overrides,
                           request, send_json, wait_until)

API_KEY = "history-test-api-key"
RECOVERY_TIMEOUT = 20.0
# Long enough for another instance to publish while the relay's broker is down; the test checks
# that it still is once it has.
OUTAGE_MS = 5000


def config(extra=None):
    out = {"channels": [{"pattern": "room:*", "history_size": 100}], "api.key": API_KEY,
           "history.max_limit": 50}
    out.update(extra or {})
    return out


class HistoryTest(RelayTestCase):
    async def api(self, relay, path, body):
        status, _, text = await relay.ahttp_post(path, body, headers={"X-API-Key": API_KEY})
        return status, json.loads(text)

    async def publish(self, relay, channel, n):
        status, body = await self.api(relay, "/api/publish", {"channel": channel, "data": {"n": n}})
        self.assertEqual(200, status, body)
        return body

    async def readyz(self, relay, status):
        async def check():
            got, _, _ = await relay.ahttp_get("/readyz")
            return got == status
        await wait_until(check, RECOVERY_TIMEOUT, what=f"/readyz answering {status}")

    def message(self, channel, n, epoch):
        return {"op": "message", "channel": channel, "offset": n, "epoch": epoch, "data": {"n": n}}

    async def test_positions_resume_and_reads_in_process(self):
        relay = await self.start_relay(config())
        async with relay.ws_connect() as a, relay.ws_connect() as b, relay.ws_connect() as c:
            ack = await request(a, {"op": "subscribe", "channel": "room:1", "id": 1})
            self.assertEqual(("ack", 1, 0), (ack["op"], ack["id"], ack["offset"]), ack)
            epoch = ack["epoch"]
            self.assertNotIn("recovered", ack)
            # Each publish answer says where the message went; every message carries it.
            for n in range(1, 6):
                self.assertEqual({"ok": True, "channels": 1, "offset": n, "epoch": epoch},
                                 await self.publish(relay, "room:1", n))
            for n in range(1, 6):
                self.assertEqual(self.message("room:1", n, epoch), await recv_json(a))

            # b resumes after 2: 3, 4, 5, then the ack, then live ones; no gap, no duplicate.
            await send_json(b, {"op": "subscribe", "channel": "room:1",
                                "since": {"offset": 2, "epoch": epoch}, "id": 7})
            for n in (3, 4, 5):
                self.assertEqual(self.message("room:1", n, epoch), await recv_json(b))
            self.assertEqual({"op": "ack", "id": 7, "offset": 5, "epoch": epoch,
                              "recovered": True}, await recv_json(b))
            await self.publish(relay, "room:1", 6)
            self.assertEqual(self.message("room:1", 6, epoch), await recv_json(a))
            self.assertEqual(self.message("room:1", 6, epoch), await recv_json(b))
            self.assertEqual([], await ping_barrier(a))
            self.assertEqual([], await ping_barrier(b))

            # A position of another epoch cannot be recovered.
            ack = await request(c, {"op": "subscribe", "channel": "room:1",
                                    "since": {"offset": 1, "epoch": "gone"}, "id": 2})
            self.assertEqual({"op": "ack", "id": 2, "offset": 6, "epoch": epoch,
                              "recovered": False}, ack)

            # The history command: the newest, then paging forward from a position.
            reply = await request(c, {"op": "history", "channel": "room:1", "limit": 2, "id": 3})
            self.assertEqual({"op": "history", "id": 3, "channel": "room:1",
                              "messages": [{"offset": 5, "data": {"n": 5}},
                                           {"offset": 6, "data": {"n": 6}}],
                              "offset": 6, "epoch": epoch}, reply)
            reply = await request(c, {"op": "history", "channel": "room:1", "limit": 2, "id": 4,
                                      "since": {"offset": 1, "epoch": epoch}})
            self.assertEqual([2, 3], [m["offset"] for m in reply["messages"]])

            # Refusals keep the connection.
            for cmd, code in [
                ({"op": "subscribe", "channel": "plain", "since": {"offset": 1, "epoch": epoch}},
                 405),
                ({"op": "history", "channel": "plain"}, 405),
                ({"op": "history", "channel": "room:1", "limit": 51}, 413),
            ]:
                reply = await request(c, dict(cmd, id=9))
                self.assertEqual(("error", code), (reply["op"], reply["code"]), reply)

            # The API reads the same history.
            status, body = await self.api(relay, "/api/history", {"channel": "room:1", "limit": 3})
            self.assertEqual(200, status, body)
            self.assertEqual({"messages": [{"offset": n, "data": {"n": n}} for n in (4, 5, 6)],
                              "offset": 6, "epoch": epoch}, body)
            status, body = await self.api(relay, "/api/history", {"channel": "plain"})
            self.assertEqual((405, {"error": "no history on this channel"}), (status, body))

        m = await relay.ametrics()
        self.assertEqual(1, metric(m, "wsrelay_recoveries_total", result="recovered"))
        self.assertEqual(1, metric(m, "wsrelay_recoveries_total", result="not_recovered"))
        self.assertEqual(0, metric(m, "wsrelay_history_reads_in_flight"))
        self.assertEqual(0, metric(m, "wsrelay_history_trimmed_total"))  # 6 of 100

    async def test_trimmed_messages_are_counted(self):
        # In process: one per publish once the history holds history_size.
        relay = await self.start_relay(config({"channels": [{"pattern": "room:*",
                                                             "history_size": 3}]}))
        for n in range(1, 6):
            await self.publish(relay, "room:4", n)
        self.assertEqual(2, metric(await relay.ametrics(), "wsrelay_history_trimmed_total"))

        # Redis trims whole stream nodes (XTRIM MAXLEN ~): what it deleted and what it still
        # holds are every message published.
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis, config({"channels": [
            {"pattern": "room:*", "history_size": 10}]})))
        await self.readyz(relay, 200)
        for n in range(1, 251):
            await self.publish(relay, "room:5", n)
        trimmed = metric(await relay.ametrics(), "wsrelay_history_trimmed_total")
        self.assertGreater(trimmed, 0)
        self.assertEqual(250, trimmed + await redis.acommand("XLEN", "wsrelay:{room:5}:s"))

    async def test_a_gap_is_recovered_without_a_notice(self):
        redis = self.start_redis()
        # One worker, and a reconnect that waits: another instance publishes meanwhile.
        relay = await self.start_relay(redis_overrides(redis, config({
            "workers": 1, "broker.redis.reconnect_min_ms": OUTAGE_MS,
            "broker.redis.reconnect_max_ms": OUTAGE_MS})))
        other = await self.start_relay(redis_overrides(redis, config({"workers": 1})))
        await self.readyz(relay, 200)
        await self.readyz(other, 200)
        async with relay.ws_connect() as a:
            ack = await request(a, {"op": "subscribe", "channel": "room:2", "id": 1})
            epoch = ack["epoch"]
            await self.publish(other, "room:2", 1)
            self.assertEqual(self.message("room:2", 1, epoch), await recv_json(a))

            # Redis drops every subscriber connection: both relays go down; `other` is back at
            # once, `relay` only after OUTAGE_MS.
            await redis.acommand("CLIENT", "KILL", "TYPE", "pubsub")
            await self.readyz(relay, 503)
            await self.readyz(other, 200)
            for n in (2, 3):
                await self.publish(other, "room:2", n)
            status, _, _ = await relay.ahttp_get("/readyz")
            self.assertEqual(503, status, "the messages must be published during the outage")

            await self.readyz(relay, 200)
            for n in (2, 3):
                self.assertEqual(self.message("room:2", n, epoch),
                                 await recv_json(a, RECOVERY_TIMEOUT))
            await self.publish(other, "room:2", 4)
            self.assertEqual(self.message("room:2", 4, epoch), await recv_json(a))
            self.assertEqual([], await ping_barrier(a))
        m = await relay.ametrics()
        self.assertEqual(1, metric(m, "wsrelay_channel_recoveries_total", result="recovered"))

    async def test_a_lost_history_is_told_with_the_new_position(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis, config({"workers": 1})))
        await self.readyz(relay, 200)
        async with relay.ws_connect() as a:
            ack = await request(a, {"op": "subscribe", "channel": "room:3", "id": 1})
            epoch = ack["epoch"]
            await self.publish(relay, "room:3", 1)
            self.assertEqual(self.message("room:3", 1, epoch), await recv_json(a))

            redis.kill()  # no persistence: the history and its epoch are gone
            await self.readyz(relay, 503)
            redis.start()
            notice = await recv_json(a, RECOVERY_TIMEOUT)
            self.assertEqual({"op": "resubscribed", "channel": "room:3", "gap": True,
                              "offset": 0}, {k: notice.get(k) for k in
                                             ("op", "channel", "gap", "offset")}, notice)
            self.assertNotEqual(epoch, notice["epoch"])
            await self.readyz(relay, 200)
            body = await self.publish(relay, "room:3", 1)
            self.assertEqual(notice["epoch"], body["epoch"])
            self.assertEqual(self.message("room:3", 1, notice["epoch"]), await recv_json(a))
            self.assertEqual([], await ping_barrier(a))
        m = await relay.ametrics()
        self.assertEqual(1, metric(m, "wsrelay_channel_recoveries_total", result="not_recovered"))


if __name__ == "__main__":
    unittest.main()
