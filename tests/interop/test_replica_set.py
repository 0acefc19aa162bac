"""Scenario 2: PyMongo discovers a replica set from one seed and honours read preferences."""
import time
import unittest

import pymongo
from pymongo.read_preferences import Nearest, Secondary

from simutil import CommandLog, Sim

CONFIG = """
topology = "replset"
nodes = 3
set_name = "rs0"
[[members]]
priority = 2
tags = { dc = "ny" }
[[members]]
tags = { dc = "sf" }
[[members]]
tags = { dc = "ny", rack = "b" }
"""


class ReplicaSet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(config=CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def client(self, **kw):
        log = CommandLog()
        seed = self.sim.members[1]  # one seed, not the primary
        c = pymongo.MongoClient("mongodb://%s/?replicaSet=rs0" % seed, event_listeners=[log],
                                serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=500, **kw)
        self.addCleanup(c.close)
        return c, log

    def test_ready_quickly(self):
        self.assertLess(self.sim.ready_after, 1.0)

    def test_discovery_from_one_seed(self):
        c, _ = self.client()
        c.admin.command("ping")
        self.sim.wait_for(lambda: len(c.nodes) == 3, what="all members discovered")
        expected = {tuple(h.rsplit(":", 1)) for h in self.sim.members}
        self.assertEqual({(h, str(p)) for h, p in c.nodes}, expected)
        self.assertEqual("%s:%d" % c.primary, self.sim.members[0])
        self.assertEqual({"%s:%d" % s for s in c.secondaries}, set(self.sim.members[1:]))

    def test_secondary_reads(self):
        c, log = self.client()
        c.rs.data.insert_one({"x": 1}, )
        coll = c.rs.get_collection("data", read_preference=pymongo.ReadPreference.SECONDARY)
        self.sim.wait_for(lambda: coll.find_one({"x": 1}) is not None, what="replicated read")
        finds = [e for e in log.started_events if e.command_name == "find"]
        self.assertTrue(finds)
        for e in finds:
            self.assertIn("%s:%d" % e.connection_id, self.sim.members[1:])

    def test_tag_sets(self):
        c, log = self.client()
        coll = c.rs.get_collection("tags", read_preference=Secondary(tag_sets=[{"dc": "sf"}]))
        for _ in range(5):
            coll.find_one()
        addresses = {"%s:%d" % e.connection_id for e in log.started_events if e.command_name == "find"}
        self.assertEqual(addresses, {self.sim.members[1]})
        log.clear()
        coll = c.rs.get_collection("tags", read_preference=Secondary(tag_sets=[{"rack": "z"}, {"dc": "ny"}]))
        for _ in range(5):
            coll.find_one()
        addresses = {"%s:%d" % e.connection_id for e in log.started_events if e.command_name == "find"}
        self.assertEqual(addresses, {self.sim.members[2]})

    def test_local_threshold(self):
        slow = self.sim.members[2]
        self.sim.ctl("simLatency", slow, ms=150)
        try:
            c, log = self.client(localThresholdMS=15)
            # Let a few heartbeats measure the round-trip times.
            self.sim.wait_for(lambda: len(c.nodes) == 3)
            time.sleep(2.5)
            coll = c.rs.get_collection("lt", read_preference=Nearest())
            log.clear()
            for _ in range(20):
                coll.find_one()
            addresses = {"%s:%d" % e.connection_id for e in log.started_events if e.command_name == "find"}
            self.assertTrue(addresses)
            self.assertNotIn(slow, addresses)
        finally:
            self.sim.ctl("simLatency", slow, ms=0)


if __name__ == "__main__":
    unittest.main()
