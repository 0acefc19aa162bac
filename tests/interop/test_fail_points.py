"""Scenario 8: failCommand drives PyMongo's retry logic."""
import unittest

import pymongo
from pymongo.errors import AutoReconnect

from simutil import CommandLog, Sim


class FailPoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "replset", "--nodes", "3")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def client(self, **kw):
        log = CommandLog()
        c = pymongo.MongoClient(self.sim.uri, event_listeners=[log], serverSelectionTimeoutMS=5000,
                                heartbeatFrequencyMS=500, **kw)
        self.addCleanup(c.close)
        return c, log

    def test_retryable_write_retries_shutdown_in_progress(self):
        c, log = self.client(retryWrites=True)
        c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": ["insert"], "errorCode": 91})
        c.fp.data.insert_one({"_id": "retried"})
        self.assertEqual(log.names().count("insert"), 2)
        self.assertEqual(c.fp.data.count_documents({"_id": "retried"}), 1)

    def test_close_connection_gives_auto_reconnect(self):
        c, _ = self.client(retryReads=False)
        c.fp.data.insert_one({"x": 1})
        c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": ["find"], "closeConnection": True})
        with self.assertRaises(AutoReconnect):
            c.fp.data.find_one()
        self.assertIsNotNone(c.fp.data.find_one())

    def test_write_concern_error_is_reported(self):
        c, _ = self.client(retryWrites=False)
        c.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                        data={"failCommands": ["insert"],
                              "writeConcernError": {"code": 100, "errmsg": "injected"}})
        with self.assertRaises(pymongo.errors.WriteConcernError) as ctx:
            c.fp.data.insert_one({"y": 1})
        self.assertEqual(ctx.exception.code, 100)

    def test_app_name_filter(self):
        other, _ = self.client(appName="other")
        mine, _ = self.client(appName="mine", retryReads=False)
        mine.admin.command("configureFailPoint", "failCommand", mode="alwaysOn",
                           data={"failCommands": ["count"], "errorCode": 2, "appName": "mine"})
        try:
            other.fp.data.count_documents({})  # aggregate, not count: unaffected anyway
            self.assertEqual(other.fp.command("count", "data")["ok"], 1.0)
            with self.assertRaises(pymongo.errors.OperationFailure):
                mine.fp.command("count", "data")
        finally:
            mine.admin.command("configureFailPoint", "failCommand", mode="off")


if __name__ == "__main__":
    unittest.main()
