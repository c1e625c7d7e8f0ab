"""A drained relay's subscribers recover on the others, checked by the benchmark load generator's
recovery mode (tests/bench, WSRELAY_LOADGEN): 300 subscribers on 10 channels with history over
three relays (and a fourth that starts empty), the third drained while messages flow; each of its
subscribers reconnects elsewhere with "since" and must get every message exactly once, in offset
order, with "recovered":true. No timing is asserted: CI is noisy."""

import asyncio
import json
import subprocess
import unittest

from relay_harness import RelayTestCase, UNMETERED, env_executable, redis_overrides

LOADGEN_TIMEOUT_S = 120
DRAIN_TIMEOUT_S = 30
SUBSCRIBERS = 300
CHANNELS = 10
HISTORY = {
    "workers": 1,
    "drain.window_ms": 1000,
    "channels": [{"pattern": "hist*", "history_size": 100, "history_ttl_ms": 600000}],
}


def loadgen():
    return env_executable("WSRELAY_LOADGEN")


class RecoveryLoadTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def test_drained_relays_subscribers_recover_every_message_once(self):
        redis = self.start_redis()
        relays = [await self.start_relay(redis_overrides(redis, HISTORY)) for _ in range(4)]
        drained, spare = relays[2], relays[3]
        cmd = [loadgen(), "recovery", "--timeout", str(LOADGEN_TIMEOUT_S),
               "--drain-timeout", str(DRAIN_TIMEOUT_S),
               "--url", relays[0].ws_uri(), "--url", relays[1].ws_uri(), "--url", drained.ws_uri(),
               "--spare-url", spare.ws_uri(), "--drain-pid", str(drained.proc.pid),
               "--drain-after", "1", "--redis", f"127.0.0.1:{redis.port}",
               "--subscribers", str(SUBSCRIBERS), "--channels", str(CHANNELS), "--threads", "2",
               "--rate", "200", "--count", "1200", "--size", "64"]
        proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True,
                                       timeout=LOADGEN_TIMEOUT_S + 30)
        context = f"{' '.join(cmd)}\nexit {proc.returncode}\nstdout: {proc.stdout}\n" \
                  f"stderr: {proc.stderr}"
        lines = proc.stdout.strip().splitlines()
        self.assertTrue(lines, context)
        report = json.loads(lines[-1])
        self.assertEqual(0, proc.returncode, context)
        self.assertEqual("complete", report["outcome"], context)
        # Subscriber g starts on --url g % 3: a third of them on the drained relay.
        moved = SUBSCRIBERS // 3
        self.assertEqual(moved, report["drain_closes"], context)
        self.assertEqual(moved, report["recovered"], context)
        self.assertEqual(SUBSCRIBERS // CHANNELS * 1200, report["expected"], context)
        for key in ("loss", "duplicates", "out_of_order", "offset_errors", "epoch_changes",
                    "not_recovered", "ack_mismatches", "no_position", "unexpected",
                    "error_frames", "disconnects"):
            self.assertEqual(0, report[key], f"{key}\n{context}")
        self.assertEqual(0, await asyncio.to_thread(drained.wait), context)


if __name__ == "__main__":
    unittest.main()
