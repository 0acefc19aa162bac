"""Scenario 4: master-slave with direct connections."""
import unittest

import pymongo
from pymongo.errors import NotMasterError

from simutil import Sim


class MasterSlave(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "master-slave", "--nodes", "3", "--lag-ms", "20")
        cls.master, cls.slaves = cls.sim.members[0], cls.sim.members[1:]

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def direct(self, host, **kw):
        c = pymongo.MongoClient(host, directConnection=True, serverSelectionTimeoutMS=5000, **kw)
        self.addCleanup(c.close)
        return c

    def test_master_writes_slaves_read(self):
        master = self.direct(self.master)
        self.assertTrue(master.admin.command("isMaster")["ismaster"])
        master.ms.data.insert_many([{"i": i} for i in range(10)])
        for host in self.slaves:
            slave = self.direct(host, readPreference="secondaryPreferred")
            self.assertFalse(slave.admin.command("isMaster")["ismaster"])
            self.sim.wait_for(lambda: slave.ms.data.count_documents({}) == 10, what="replicated to " + host)

    def test_write_to_slave_fails(self):
        slave = self.direct(self.slaves[0])
        with self.assertRaises(NotMasterError) as ctx:
            slave.ms.data.insert_one({"x": 1})
        # PyMongo 3.11's NotMasterError keeps the server's reply in details.
        self.assertEqual(ctx.exception.details["code"], 10107)
        self.assertEqual(ctx.exception.details["codeName"], "NotWritablePrimary")


if __name__ == "__main__":
    unittest.main()
