"""Scenario 3: failover under PyMongo; no majority-acknowledged write is lost."""
import time
import unittest

import pymongo
from pymongo.errors import AutoReconnect, NotMasterError, ServerSelectionTimeoutError
from pymongo.write_concern import WriteConcern

from simutil import Sim


class Failover(unittest.TestCase):
    def setUp(self):
        self.sim = Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "300", "--lag-ms", "5")
        self.addCleanup(self.sim.stop)
        self.client = pymongo.MongoClient(self.sim.uri, serverSelectionTimeoutMS=10000, heartbeatFrequencyMS=500,
                                          retryWrites=False)
        self.addCleanup(self.client.close)
        self.coll = self.client.fo.get_collection("docs", write_concern=WriteConcern(w="majority", wtimeout=5000))

    def write_until_ok(self, doc, deadline_s=15):
        errors = []
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                self.coll.insert_one(doc)
                return errors
            except (AutoReconnect, NotMasterError, ServerSelectionTimeoutError) as e:
                errors.append(type(e).__name__)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def test_step_down_then_new_primary(self):
        acked = []
        for i in range(50):
            self.coll.insert_one({"_id": i})
            acked.append(i)
        old = self.sim.primary()
        self.sim.ctl("simStepDown", old, secs=30)
        saw_errors = []
        for i in range(50, 100):
            saw_errors += self.write_until_ok({"_id": i})
            acked.append(i)
        new = self.sim.primary()
        self.assertIsNotNone(new)
        self.assertNotEqual(new, old)
        self.assertEqual("%s:%d" % self.client.primary, new)
        ids = sorted(d["_id"] for d in self.coll.find({}, {"_id": 1}))
        self.assertEqual(ids, acked)

    def test_killed_member_rejoins_as_secondary(self):
        for i in range(20):
            self.coll.insert_one({"_id": i})
        old = self.sim.primary()
        self.sim.ctl("simKill", old)
        for i in range(20, 40):
            self.write_until_ok({"_id": i})
        self.assertNotEqual(self.sim.primary(), old)
        self.sim.ctl("simRestart", old)
        self.sim.wait_for(lambda: self.sim.role(old) == "secondary", what="restarted member is a secondary")
        # It caught up: a direct secondary read on it sees all 40 documents.
        direct = pymongo.MongoClient(old, directConnection=True, readPreference="secondaryPreferred")
        self.addCleanup(direct.close)
        self.sim.wait_for(lambda: direct.fo.docs.count_documents({}) == 40, what="restarted member caught up")
        ids = sorted(d["_id"] for d in self.coll.find({}, {"_id": 1}))
        self.assertEqual(ids, list(range(40)))


if __name__ == "__main__":
    unittest.main()
