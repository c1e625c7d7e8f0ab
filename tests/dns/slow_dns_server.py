"""A deliberately slow DNS server for the AsyncResolver tests (standard library only).

Run by run.sh inside a private network namespace, on 127.0.0.1:53 (UDP). It answers:
  slow.wsrelay.test   A 192.0.2.10 and an empty AAAA, each after --delay seconds
  fast.wsrelay.test   A 192.0.2.11 and an empty AAAA, at once
  anything else       NXDOMAIN, at once
Each query is answered from its own thread, so slow answers do not hold back the others. It
prints "ready" once bound, and exits by itself after --lifetime seconds should nobody stop it.
"""

import argparse
import os
import socketserver
import struct
import sys
import threading
import time

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
NXDOMAIN = 3

RECORDS = {
    "slow.wsrelay.test": ("192.0.2.10", True),
    "fast.wsrelay.test": ("192.0.2.11", False),
}


def parse_question(packet):
    """(name, qtype, end of the question) of the first question, or None."""
    if len(packet) < 12:
        return None
    pos = 12
    labels = []
    while pos < len(packet):
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0 or pos + length > len(packet):
            return None  # no compression in a question we asked for; anything else is malformed
        labels.append(packet[pos:pos + length].decode("ascii", "replace").lower())
        pos += length
    if pos + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ".".join(labels), qtype, pos + 4


def answer(packet, delay):
    question = parse_question(packet)
    if question is None:
        return None
    name, qtype, end = question
    query_id, flags = struct.unpack("!HH", packet[:4])
    record = RECORDS.get(name)
    rcode = 0 if record else NXDOMAIN
    answers = b""
    if record:
        address, slow = record
        if slow:
            time.sleep(delay)
        if qtype == TYPE_A:
            rdata = bytes(int(part) for part in address.split("."))
            # Name: a pointer to the question's name at offset 12. TTL 0: nothing caches it.
            answers = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 0, len(rdata)) + rdata
    # QR, the query's RD, RA; one question (echoed), the answers, no authority or additional.
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", query_id, reply_flags, 1, 1 if answers else 0, 0, 0)
    return header + packet[12:end] + answers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            packet, sock = self.request
            reply = answer(packet, args.delay)
            if reply is not None:
                sock.sendto(reply, self.client_address)

    socketserver.ThreadingUDPServer.daemon_threads = True
    server = socketserver.ThreadingUDPServer(("127.0.0.1", args.port), Handler)
    # A bound on our own life: a run that was killed before it could stop us leaves nothing behind.
    watchdog = threading.Timer(args.lifetime, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
