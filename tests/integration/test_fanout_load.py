"""Fan-out under load, checked by the benchmark load generator (tests/bench, WSRELAY_LOADGEN):
every subscriber gets every message exactly once and in publish order. Python could not keep up
with 100,000 deliveries a second, hence the C++ client. No timing is asserted: CI is noisy."""

import asyncio
import json
import subprocess
import unittest

from relay_harness import RelayTestCase, UNMETERED, env_executable

# Generous: publishing takes 4 s, but the sanitized build on a busy 2-core runner is slow to
# catch up, and a late delivery is not a lost one.
LOADGEN_TIMEOUT_S = 120
DRAIN_TIMEOUT_S = 30


def loadgen():
    return env_executable("WSRELAY_LOADGEN")


class FanoutLoadTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def run_fanout(self, relay, *args):
        cmd = [loadgen(), "fanout", "--url", relay.ws_uri(), "--timeout", str(LOADGEN_TIMEOUT_S),
               "--drain-timeout", str(DRAIN_TIMEOUT_S), *args]
        proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True,
                                       timeout=LOADGEN_TIMEOUT_S + 30)
        context = f"{' '.join(cmd)}\nexit {proc.returncode}\nstdout: {proc.stdout}\n" \
                  f"stderr: {proc.stderr}"
        lines = proc.stdout.strip().splitlines()
        self.assertTrue(lines, context)
        report = json.loads(lines[-1])
        self.assertEqual(0, proc.returncode, context)
        return report, context

    async def test_200_subscribers_get_every_message_once_in_order(self):
        relay = await self.start_relay({"workers": 2})
        report, context = await self.run_fanout(
            relay, "--subscribers", "200", "--rate", "500", "--count", "2000", "--size", "64")
        self.assertEqual("complete", report["outcome"], context)
        self.assertEqual(2000, report["offered"], context)
        self.assertEqual(200 * 2000, report["expected"], context)
        self.assertEqual(200 * 2000, report["delivered"], context)
        self.assertEqual(0, report["loss"], context)
        self.assertEqual(0, report["duplicates"], context)
        self.assertEqual(0, report["out_of_order"], context)
        self.assertEqual(0, report["unexpected"], context)
        self.assertEqual(0, report["error_frames"], context)
        self.assertEqual(0, report["disconnects"], context)

    async def test_channels_and_threads_keep_each_channel_separate(self):
        # 60 subscribers over 3 channels and 2 loadgen threads: each gets exactly its channel's
        # third of the messages (a wrong channel would count as unexpected).
        relay = await self.start_relay({"workers": 2})
        report, context = await self.run_fanout(
            relay, "--subscribers", "60", "--channels", "3", "--threads", "2", "--rate", "300",
            "--count", "600", "--size", "200")
        self.assertEqual("complete", report["outcome"], context)
        self.assertEqual(60 * 200, report["expected"], context)
        self.assertEqual(60 * 200, report["delivered"], context)
        for key in ("loss", "duplicates", "out_of_order", "unexpected", "error_frames",
                    "disconnects"):
            self.assertEqual(0, report[key], f"{key}\n{context}")


if __name__ == "__main__":
    unittest.main()
