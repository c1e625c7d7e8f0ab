"""Abusive clients for the soak (soak.sh): they send as fast as they can and never read.

usage: /usr/bin/python3 soak_abuser.py --url ws://127.0.0.1:PORT/ws --duration S
           [--flooders N] [--garbage N] [--subscribe-flooders N]

- flooder: publishes 64-byte messages with ids on its own channel, to which it is subscribed,
  as fast as the socket takes them, and never reads: acks and its own messages pile up (or, with
  `limits.rate.publish_per_second`, 429 refusals), so the relay's send queue and slow-consumer
  close (4001) or its rate limit are exercised.
- garbage: sends commands the relay refuses (invalid JSON, unknown op, a bad channel) until it is
  closed (4500 after `limits.max_bad_commands`).
- subscribe-flooder: subscribes and unsubscribes fresh channel names as fast as it can
  (`limits.rate.subscribe_per_second`, the channel table's growth and shrinking).

Each reconnects 100 ms after being closed or refused, until the duration is over; then it prints
one JSON object on stdout: what was sent, closes by code, refused connects. Standard library and
Debian's python3-websockets only.
"""

import argparse
import asyncio
import collections
import json
import time

import websockets

BAD = ['{"op":"publish","channel":"a b","data":1}', '{"op":"nope"}', "{not json", '[1,2,3]']


async def abuser(kind, index, url, deadline, stats):
    n = 0
    while time.monotonic() < deadline:
        try:
            # max_queue 1 and no reading: the client stops taking frames off the socket at once.
            async with websockets.connect(url, open_timeout=5, close_timeout=1, ping_interval=None,
                                          compression=None, max_queue=1) as ws:
                stats["connects"] += 1
                channel = f"abuse-{kind}-{index}"
                if kind == "flood":
                    await ws.send(json.dumps({"op": "subscribe", "channel": channel, "id": 0}))
                while time.monotonic() < deadline:
                    n += 1
                    if kind == "flood":
                        frame = json.dumps({"op": "publish", "channel": channel,
                                            "data": "x" * 40, "id": n})
                    elif kind == "garbage":
                        frame = BAD[n % len(BAD)]
                    else:
                        frame = json.dumps({"op": "subscribe" if n % 2 else "unsubscribe",
                                            "channel": f"{channel}-{n // 2}", "id": n})
                    await ws.send(frame)
                    stats["sent"] += 1
                    if n % 64 == 0:
                        await asyncio.sleep(0)  # let the other abusers in
                await ws.close()
                stats["closed_by_us"] += 1
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else 1006
            stats["closes"][str(code)] += 1
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
            stats["refused"][type(e).__name__] += 1
        await asyncio.sleep(0.1)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--flooders", type=int, default=2)
    p.add_argument("--garbage", type=int, default=1)
    p.add_argument("--subscribe-flooders", type=int, default=1)
    args = p.parse_args()
    deadline = time.monotonic() + args.duration
    kinds = {"flood": args.flooders, "garbage": args.garbage, "subscribe": args.subscribe_flooders}
    stats = {kind: {"connects": 0, "sent": 0, "closed_by_us": 0,
                    "closes": collections.Counter(), "refused": collections.Counter()}
             for kind in kinds}
    await asyncio.gather(*(abuser(kind, i, args.url, deadline, stats[kind])
                           for kind, count in kinds.items() for i in range(count)))
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
