"""limits.socket_send_buffer_bytes sets SO_SNDBUF on every accepted client socket."""

import asyncio
import re
import shutil
import subprocess
import unittest

from relay_harness import RelayTestCase, request


def server_side_sndbufs(port):
    """sk_sndbuf ("tb" in `ss -m`) of every established socket whose local port is `port`."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [int(v) for v in re.findall(r"\btb(\d+)", out)]


@unittest.skipUnless(shutil.which("ss"), "ss (iproute2) is installed by tools/dev test")
class SocketBufferTest(RelayTestCase):
    async def test_configured_send_buffer_is_applied(self):
        relay = await self.start_relay({"limits.socket_send_buffer_bytes": 12288})
        async with relay.ws_connect() as ws:
            await request(ws, {"op": "ping", "id": 1})  # established and served
            sizes = await asyncio.to_thread(server_side_sndbufs, relay.port)
            # Linux doubles SO_SNDBUF for its own bookkeeping.
            self.assertEqual([24576], sizes)

    async def test_default_leaves_the_kernel_autotuning(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as ws:
            await request(ws, {"op": "ping", "id": 1})
            sizes = await asyncio.to_thread(server_side_sndbufs, relay.port)
            self.assertEqual(1, len(sizes))
            self.assertNotEqual(24576, sizes[0])


if __name__ == "__main__":
    unittest.main()
