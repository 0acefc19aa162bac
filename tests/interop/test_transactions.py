"""PyMongo runs transactions on a trellis-sim replica set: commit, abort, the convenient API's
retry of a transient error, write conflicts, and the server errors a driver relies on."""
import threading
import unittest

import pymongo
from pymongo.errors import OperationFailure

from simutil import CommandLog, Sim

CONFIG = """
topology = "replset"
nodes = 3
set_name = "rs0"
"""


class Transactions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(config=CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def client(self):
        log = CommandLog()
        c = pymongo.MongoClient("mongodb://%s/?replicaSet=rs0" % self.sim.members[0], event_listeners=[log],
                                serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=500)
        self.addCleanup(c.close)
        return c, log

    def fresh(self, c, name):
        coll = c.txn[name]
        coll.drop()
        coll.insert_one({"_id": 0})  # the collection exists before the transaction
        return coll

    def test_commit_makes_writes_visible(self):
        c, log = self.client()
        coll = self.fresh(c, "commit")
        with c.start_session() as s:
            with s.start_transaction():
                coll.insert_one({"_id": 1}, session=s)
                coll.update_one({"_id": 0}, {"$set": {"x": 1}}, session=s)
                self.assertEqual(coll.count_documents({}, session=s), 2)
                self.assertEqual(coll.count_documents({}), 1)
                self.assertIsNone(coll.find_one({"x": 1}))
            self.assertEqual(coll.count_documents({}), 2)
            self.assertEqual(coll.find_one({"_id": 0}), {"_id": 0, "x": 1})
        commits = [e for e in log.started_events if e.command_name == "commitTransaction"]
        self.assertEqual(len(commits), 1)

    def test_abort_discards(self):
        c, _ = self.client()
        coll = self.fresh(c, "abort")
        with c.start_session() as s:
            s.start_transaction()
            coll.insert_one({"_id": 1}, session=s)
            coll.delete_one({"_id": 0}, session=s)
            s.abort_transaction()
        self.assertEqual(list(coll.find()), [{"_id": 0}])

    def test_with_transaction_retries_transient_error(self):
        c, _ = self.client()
        coll = self.fresh(c, "convenient")
        c.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                         "data": {"failCommands": ["insert"], "errorCode": 112,
                                  "errorLabels": ["TransientTransactionError"]}})
        calls = []

        def callback(s):
            calls.append(1)
            coll.insert_one({"_id": 1}, session=s)

        with c.start_session() as s:
            s.with_transaction(callback)
        self.assertEqual(len(calls), 2)
        self.assertEqual(coll.count_documents({}), 2)

    def test_error_aborts_and_commit_is_no_such_transaction(self):
        c, _ = self.client()
        coll = self.fresh(c, "errors")
        with c.start_session() as s:
            s.start_transaction()
            coll.insert_one({"_id": 1}, session=s)
            with self.assertRaises(OperationFailure):
                coll.insert_one({"_id": 1}, session=s)  # a duplicate key aborts the transaction
            with self.assertRaises(OperationFailure) as e:
                s.commit_transaction()
            self.assertEqual(e.exception.code, 251)
            self.assertTrue(e.exception.has_error_label("TransientTransactionError"))
        self.assertEqual(coll.count_documents({}), 1)

    def test_commit_again_and_abort_after_commit(self):
        c, _ = self.client()
        coll = self.fresh(c, "again")
        with c.start_session() as s:
            s.start_transaction()
            coll.insert_one({"_id": 1}, session=s)
            s.commit_transaction()
            s.commit_transaction()  # the server answers the same txnNumber's commit again
            self.assertEqual(coll.count_documents({}), 2)
            # Refused by the server itself (PyMongo would refuse it client-side).
            with self.assertRaises(OperationFailure) as e:
                c.admin.command({"abortTransaction": 1, "txnNumber": s._server_session.transaction_id,
                                 "autocommit": False}, session=s)
            self.assertEqual(e.exception.code, 256)

    def test_write_conflict(self):
        c, _ = self.client()
        coll = self.fresh(c, "conflict")
        with c.start_session() as s1, c.start_session() as s2:
            s1.start_transaction()
            coll.update_one({"_id": 0}, {"$set": {"by": 1}}, session=s1)
            s2.start_transaction()
            coll.insert_one({"_id": 2}, session=s2)
            with self.assertRaises(OperationFailure) as e:
                coll.update_one({"_id": 0}, {"$set": {"by": 2}}, session=s2)
            self.assertEqual(e.exception.code, 112)
            self.assertEqual(e.exception.details["codeName"], "WriteConflict")
            self.assertTrue(e.exception.has_error_label("TransientTransactionError"))
            with self.assertRaises(OperationFailure) as e:
                s2.commit_transaction()  # the server aborted it
            self.assertEqual(e.exception.code, 251)
            # Outside a transaction, a write to the document waits for s1 (here up to its maxTimeMS).
            with self.assertRaises(OperationFailure) as e:
                c.txn.command({"update": "conflict", "updates": [{"q": {"_id": 0}, "u": {"$set": {"x": 1}}}],
                               "maxTimeMS": 100})
            self.assertEqual(e.exception.code, 50)
            s1.commit_transaction()
        self.assertEqual(list(coll.find()), [{"_id": 0, "by": 1}])

    def test_with_transaction_retries_a_write_conflict(self):
        c, _ = self.client()
        coll = self.fresh(c, "conflict_retry")
        s1 = c.start_session()
        self.addCleanup(s1.end_session)
        s1.start_transaction()
        coll.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=s1)
        committer = threading.Timer(0.2, s1.commit_transaction)
        committer.start()
        calls = []

        def callback(s):
            calls.append(1)
            coll.update_one({"_id": 0}, {"$inc": {"n": 10}}, session=s)

        with c.start_session() as s2:
            s2.with_transaction(callback)
        committer.join()
        self.assertGreater(len(calls), 1)
        self.assertEqual(coll.find_one({"_id": 0})["n"], 11)


if __name__ == "__main__":
    unittest.main()
