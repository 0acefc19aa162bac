"""Scenario 6: SCRAM-SHA-1 and SCRAM-SHA-256 against trellis-sim's users."""
import unittest

import pymongo
from pymongo.errors import OperationFailure

from simutil import Sim


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--user", "alice:s3cret", "--user", "bob:p@ss:w0rd@app")
        cls.host = cls.sim.members[0]

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def client(self, **kw):
        c = pymongo.MongoClient(self.host, serverSelectionTimeoutMS=3000, **kw)
        self.addCleanup(c.close)
        return c

    def test_scram_sha_256_and_sha_1(self):
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            c = self.client(username="alice", password="s3cret", authMechanism=mechanism)
            c.auth.data.insert_one({"by": mechanism})
            self.assertEqual(c.auth.data.count_documents({"by": mechanism}), 1)

    def test_negotiated_mechanism_and_other_database(self):
        # No mechanism given: PyMongo asks saslSupportedMechs and picks SCRAM-SHA-256.
        c = self.client(username="bob", password="p@ss:w0rd", authSource="app")
        self.assertEqual(c.app.c.count_documents({}), 0)

    def test_wrong_password(self):
        c = self.client(username="alice", password="wrong")
        with self.assertRaises(OperationFailure) as ctx:
            c.admin.command("ping")
        self.assertEqual(ctx.exception.code, 18)

    def test_unknown_user(self):
        c = self.client(username="mallory", password="x")
        with self.assertRaises(OperationFailure) as ctx:
            c.admin.command("ping")
        self.assertEqual(ctx.exception.code, 18)

    def test_unauthenticated_find(self):
        c = self.client()
        self.assertEqual(c.admin.command("ping")["ok"], 1.0)  # allowed without authentication
        with self.assertRaises(OperationFailure) as ctx:
            c.auth.data.find_one()
        self.assertEqual(ctx.exception.code, 13)


if __name__ == "__main__":
    unittest.main()
