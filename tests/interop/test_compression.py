"""PyMongo 3.11 talks to trellis-sim with each compressor (python3-snappy, python3-zstandard,
zlib): small and ~8 MiB documents both ways, proved compressed by the simulator's own counts
(serverStatus network.compression, as mongod reports them); the server's first match of the
client's list is what gets used."""
import unittest

import pymongo

from simutil import Sim

NAMES = ("snappy", "zlib", "zstd")
BIG = ("trellis compression " * 440_000)[:8 * 1024 * 1024]  # ~8 MiB, compressible


def counts(client):
    status = client.admin.command("serverStatus")
    return {name: status["network"]["compression"][name] for name in status["network"]["compression"]}


class EachCompressor(unittest.TestCase):
    def test_round_trips_compressed(self):
        with Sim() as sim:
            for name in NAMES:
                with self.subTest(compressor=name):
                    plain = pymongo.MongoClient(sim.uri)  # reads the counts uncompressed
                    before = counts(plain)
                    c = pymongo.MongoClient(sim.uri, compressors=name)
                    coll = c.interop["c_" + name]
                    coll.insert_one({"_id": 1, "s": "tiny"})
                    coll.insert_one({"_id": 2, "s": BIG})
                    self.assertEqual(coll.find_one({"_id": 1})["s"], "tiny")
                    self.assertEqual(coll.find_one({"_id": 2})["s"], BIG)
                    after = counts(plain)
                    for other in NAMES:
                        moved = after[other] != before[other]
                        self.assertEqual(moved, other == name, "%s counts moved: %s" % (other, moved))
                    d = after[name]["decompressor"]
                    e = after[name]["compressor"]
                    # The big document came in compressed, and went out compressed.
                    self.assertGreater(d["bytesOut"] - before[name]["decompressor"]["bytesOut"], len(BIG))
                    self.assertLess(d["bytesIn"] - before[name]["decompressor"]["bytesIn"], len(BIG) // 4)
                    self.assertGreater(e["bytesIn"] - before[name]["compressor"]["bytesIn"], len(BIG))
                    self.assertLess(e["bytesOut"] - before[name]["compressor"]["bytesOut"], len(BIG) // 4)
                    c.close()
                    plain.close()


class Negotiation(unittest.TestCase):
    def used(self, sim, compressors):
        plain = pymongo.MongoClient(sim.uri)
        before = counts(plain)
        c = pymongo.MongoClient(sim.uri, compressors=compressors)
        c.neg.c.insert_one({"s": "x" * 1000})
        after = counts(plain)
        c.close()
        plain.close()
        return [n for n in after if after[n]["decompressor"]["bytesIn"] > before[n]["decompressor"]["bytesIn"]]

    def test_first_match_of_the_client_list(self):
        with Sim() as sim:
            self.assertEqual(self.used(sim, "snappy,zstd"), ["snappy"])
            self.assertEqual(self.used(sim, "zstd,snappy"), ["zstd"])
        with Sim("--compressors", "zstd,zlib") as sim:
            self.assertEqual(self.used(sim, "snappy,zstd"), ["zstd"])
            self.assertEqual(self.used(sim, "snappy"), [])  # nothing in common: uncompressed


if __name__ == "__main__":
    unittest.main()
