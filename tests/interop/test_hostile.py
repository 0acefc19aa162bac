"""Hostile clients: garbage, truncated frames, absurd lengths and invalid BSON get their
connection closed; the simulator keeps serving everyone else."""
import random
import socket
import struct
import unittest

import bson
import pymongo

from simutil import Sim


def op_msg(body, request_id=1, flags=0):
    payload = struct.pack("<I", flags) + b"\x00" + body
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


class Hostile(unittest.TestCase):
    def test_ten_thousand_bad_frames(self):
        with Sim("--topology", "standalone") as sim:
            host, port = sim.members[0].rsplit(":", 1)
            rng = random.Random(20261121)
            valid = op_msg(bson.encode({"ping": 1, "$db": "admin"}))
            good_client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            self.addCleanup(good_client.close)
            good_client.admin.command("ping")
            sock = None
            sent = 0
            for i in range(10000):
                kind = i % 5
                if kind == 0:
                    frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
                elif kind == 1:  # mutated valid frame
                    frame = bytearray(valid)
                    for _ in range(rng.randint(1, 4)):
                        frame[rng.randrange(len(frame))] = rng.getrandbits(8)
                    frame = bytes(frame)
                elif kind == 2:  # absurd or negative length
                    frame = struct.pack("<iiii", rng.choice([-1, 0, 3, 2**31 - 1, 60_000_000]), 1, 0, 2013)
                elif kind == 3:  # truncated
                    frame = valid[: rng.randint(1, len(valid) - 1)]
                else:  # well-framed, invalid BSON body
                    body = bytearray(bson.encode({"ping": 1, "$db": "admin", "s": "abc"}))
                    body[rng.randrange(4, len(body))] = 0xFF
                    frame = op_msg(bytes(body))
                # A new connection every 25 frames: the server closes bad ones.
                if sock is None or i % 25 == 0:
                    if sock:
                        sock.close()
                    sock = socket.create_connection((host, int(port)), timeout=5)
                # The server may already have closed this connection for an earlier bad frame
                # (how soon depends on load): then the frame goes once more on a fresh one.
                for _attempt in range(2):
                    try:
                        sock.sendall(frame)
                        sent += 1
                        break
                    except OSError:
                        sock.close()
                        sock = socket.create_connection((host, int(port)), timeout=5)
                if kind == 3 and sock:  # a truncated frame leaves the connection waiting: drop it
                    sock.close()
                    sock = None
            if sock:
                sock.close()
            self.assertGreater(sent, 9000)
            self.assertEqual(good_client.admin.command("ping")["ok"], 1.0)
            fresh = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            self.addCleanup(fresh.close)
            self.assertEqual(fresh.admin.command("ping")["ok"], 1.0)
            self.assertIsNone(sim.proc.poll(), "the simulator must still be running")


if __name__ == "__main__":
    unittest.main()
