"""PyMongo's change streams against trellis-sim: events, its own resume after a getMore error,
invalidate, a cluster stream through a router, and a standalone's refusal."""
import unittest

import pymongo
from pymongo.errors import OperationFailure

from simutil import CommandLog, Sim


class ChangeStreams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "replset")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def client(self):
        log = CommandLog()
        c = pymongo.MongoClient(self.sim.uri, event_listeners=[log], serverSelectionTimeoutMS=5000,
                                heartbeatFrequencyMS=500)
        self.addCleanup(c.close)
        return c, log

    def test_events_in_order(self):
        c, _ = self.client()
        coll = c.cs.order
        with coll.watch(max_await_time_ms=100) as s:
            coll.insert_one({"_id": 1, "n": {"x": 1, "y": 2}})
            coll.update_one({"_id": 1}, {"$set": {"n.x": 5}, "$unset": {"n.y": 1}})
            coll.replace_one({"_id": 1}, {"r": True})
            coll.delete_one({"_id": 1})
            events = [s.next() for _ in range(4)]
            self.assertEqual([e["operationType"] for e in events], ["insert", "update", "replace", "delete"])
            self.assertEqual(events[0]["fullDocument"], {"_id": 1, "n": {"x": 1, "y": 2}})
            self.assertEqual(events[1]["updateDescription"],
                             {"updatedFields": {"n.x": 5}, "removedFields": ["n.y"], "truncatedArrays": []})
            self.assertEqual(events[2]["fullDocument"], {"_id": 1, "r": True})
            self.assertEqual(events[3]["documentKey"], {"_id": 1})
            self.assertEqual(events[0]["ns"], {"db": "cs", "coll": "order"})
            # The cluster times increase; the resume token is the batch's postBatchResumeToken.
            times = [e["clusterTime"] for e in events]
            self.assertEqual(times, sorted(times))
            self.assertIsNotNone(s.resume_token)
            self.assertIsNone(s.try_next())

    def test_pymongo_resumes_after_a_closed_connection(self):
        c, log = self.client()
        coll = c.cs.resume
        with coll.watch(max_await_time_ms=100) as s:
            c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                            data={"failCommands": ["getMore"], "closeConnection": True})
            coll.insert_one({"_id": 7})
            self.assertEqual(s.next()["documentKey"], {"_id": 7})
        aggregates = [e.command for e in log.started_events if e.command_name == "aggregate"]
        self.assertEqual(len(aggregates), 2)
        self.assertIn("resumeAfter", aggregates[1]["pipeline"][0]["$changeStream"])

    def test_invalidate_on_drop(self):
        c, _ = self.client()
        coll = c.cs.dropped
        coll.insert_one({})
        with coll.watch(max_await_time_ms=100) as s:
            coll.drop()
            self.assertEqual(s.next()["operationType"], "drop")
            self.assertEqual(s.next()["operationType"], "invalidate")
            self.assertFalse(s.alive)


class Elsewhere(unittest.TestCase):
    def test_cluster_stream_through_a_router(self):
        with Sim("--topology", "sharded", "--shard-replset") as sim:
            c = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            try:
                with c.watch(max_await_time_ms=100) as s:
                    c.sh.data.insert_one({"i": 1})
                    e = s.next()
                    self.assertEqual((e["operationType"], e["ns"]), ("insert", {"db": "sh", "coll": "data"}))
            finally:
                c.close()

    def test_standalone_refuses(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            try:
                with self.assertRaises(OperationFailure) as ctx:
                    c.db.coll.watch()
                self.assertEqual(ctx.exception.code, 40573)
            finally:
                c.close()


if __name__ == "__main__":
    unittest.main()
