"""Scenario 5: PyMongo with two mongos seeds sees a Sharded topology."""
import unittest

import pymongo

from simutil import Sim


class Sharded(unittest.TestCase):
    def test_crud_through_routers(self):
        with Sim("--topology", "sharded", "--mongos", "2", "--shard-replset", "--nodes", "3") as sim:
            self.assertEqual(len(sim.uri.split("//")[1].split("/")[0].split(",")), 2)
            c = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            try:
                c.admin.command("ping")
                # PyMongo 3.11 has no public topology_description; its Topology object does.
                self.assertEqual(c._topology.description.topology_type_name, "Sharded")
                # The second router is discovered by PyMongo's monitor, not by the first ping.
                sim.wait_for(lambda: len(c.nodes) == 2, what="both routers discovered")
                self.assertTrue(c.is_mongos)
                c.sh.data.insert_many([{"i": i} for i in range(100)])
                self.assertEqual(c.sh.data.count_documents({"i": {"$gte": 50}}), 50)
                c.sh.data.update_many({}, {"$set": {"seen": True}})
                self.assertEqual(c.sh.data.count_documents({"seen": True}), 100)
                c.sh.data.delete_many({"i": {"$lt": 10}})
                self.assertEqual(c.sh.data.count_documents({}), 90)
            finally:
                c.close()


if __name__ == "__main__":
    unittest.main()
