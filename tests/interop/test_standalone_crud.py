"""Scenario 1: PyMongo does CRUD on a standalone trellis-sim."""
import unittest

import pymongo
from pymongo.errors import DuplicateKeyError

from simutil import CommandLog, Sim


class StandaloneCrud(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "standalone")
        cls.log = CommandLog()
        cls.client = pymongo.MongoClient(cls.sim.uri, event_listeners=[cls.log], serverSelectionTimeoutMS=5000)
        cls.coll = cls.client.crud.items

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sim.stop()

    def setUp(self):
        self.coll.drop()
        self.log.clear()

    def test_ready_line(self):
        self.assertTrue(self.sim.ready_line.startswith("ready mongodb://127.0.0.1:"), self.sim.ready_line)
        self.assertIn("control=127.0.0.1:", self.sim.ready_line)

    def test_insert_many_and_find_with_batches(self):
        result = self.coll.insert_many([{"i": i, "group": i % 10, "name": "n%04d" % i} for i in range(1000)])
        self.assertEqual(len(result.inserted_ids), 1000)
        self.assertEqual(self.coll.count_documents({}), 1000)
        self.log.clear()
        cursor = self.coll.find({"group": {"$in": [1, 2]}}, {"_id": 0, "i": 1},
                                sort=[("i", pymongo.DESCENDING)], skip=5, limit=50, batch_size=7)
        docs = list(cursor)
        self.assertEqual(len(docs), 50)
        expected = [i for i in range(999, -1, -1) if i % 10 in (1, 2)][5:55]
        self.assertEqual([d["i"] for d in docs], expected)
        self.assertEqual(set(docs[0].keys()), {"i"})
        # 50 documents in batches of 7: one find and 7 getMores.
        self.assertEqual(self.log.names().count("find"), 1)
        self.assertEqual(self.log.names().count("getMore"), 7)

    def test_updates(self):
        self.coll.insert_many([{"_id": i, "n": i, "tags": []} for i in range(10)])
        r = self.coll.update_one({"_id": 3}, {"$set": {"x": "three"}, "$inc": {"n": 10}, "$push": {"tags": "a"}})
        self.assertEqual((r.matched_count, r.modified_count), (1, 1))
        self.assertEqual(self.coll.find_one({"_id": 3}), {"_id": 3, "n": 13, "tags": ["a"], "x": "three"})
        r = self.coll.update_many({"n": {"$lt": 5}}, {"$set": {"small": True}})
        self.assertEqual(r.matched_count, 4)  # 0, 1, 2, 4: _id 3 has n 13 now
        self.assertEqual(self.coll.count_documents({"small": True}), 4)
        r = self.coll.replace_one({"_id": 4}, {"replaced": 1})
        self.assertEqual(self.coll.find_one({"_id": 4}), {"_id": 4, "replaced": 1})
        r = self.coll.update_one({"_id": 42}, {"$set": {"new": True}, "$setOnInsert": {"created": 1}}, upsert=True)
        self.assertEqual(r.upserted_id, 42)
        self.assertEqual(self.coll.find_one({"_id": 42}), {"_id": 42, "new": True, "created": 1})
        self.coll.update_one({"_id": 5}, {"$unset": {"tags": ""}})
        self.assertNotIn("tags", self.coll.find_one({"_id": 5}))

    def test_delete_count_distinct_aggregate(self):
        self.coll.insert_many([{"k": i % 3, "v": i} for i in range(30)])
        self.assertEqual(self.coll.delete_one({"k": 0}).deleted_count, 1)
        self.assertEqual(self.coll.delete_many({"k": 1}).deleted_count, 10)
        self.assertEqual(self.coll.count_documents({}), 19)
        self.assertEqual(self.coll.count_documents({"k": 2, "v": {"$gte": 20}}), 4)  # 20, 23, 26, 29
        self.assertEqual(sorted(self.coll.distinct("k")), [0, 2])
        groups = list(self.coll.aggregate([
            {"$match": {"v": {"$gte": 3}}},
            {"$group": {"_id": "$k", "total": {"$sum": "$v"}, "n": {"$sum": 1}}},
            {"$sort": {"_id": 1}},
        ]))
        self.assertEqual(groups, [
            {"_id": 0, "total": sum(v for v in range(3, 30) if v % 3 == 0), "n": 9},
            {"_id": 2, "total": sum(v for v in range(3, 30) if v % 3 == 2), "n": 9},
        ])

    def test_find_one_and_update(self):
        self.coll.insert_one({"_id": "counter", "seq": 0})
        doc = self.coll.find_one_and_update({"_id": "counter"}, {"$inc": {"seq": 1}},
                                            return_document=pymongo.ReturnDocument.AFTER)
        self.assertEqual(doc["seq"], 1)

    def test_databases(self):
        self.client.dbs_a.c.insert_one({})
        self.client.dbs_b.c.insert_one({})
        names = self.client.list_database_names()
        self.assertIn("dbs_a", names)
        self.assertIn("dbs_b", names)
        self.client.drop_database("dbs_a")
        self.assertNotIn("dbs_a", self.client.list_database_names())
        self.assertIn("c", self.client.dbs_b.list_collection_names())

    def test_duplicate_key(self):
        self.coll.insert_one({"_id": 1})
        with self.assertRaises(DuplicateKeyError) as ctx:
            self.coll.insert_one({"_id": 1})
        self.assertEqual(ctx.exception.code, 11000)
        self.coll.create_index("email", unique=True)
        self.coll.insert_one({"email": "a@example.com"})
        with self.assertRaises(DuplicateKeyError):
            self.coll.insert_one({"email": "a@example.com"})
        names = [i["name"] for i in self.coll.list_indexes()]
        self.assertEqual(names, ["_id_", "email_1"])

    def test_unknown_command(self):
        with self.assertRaises(pymongo.errors.OperationFailure) as ctx:
            self.client.admin.command("noSuchCommand")
        self.assertEqual(ctx.exception.code, 59)

    def test_fsync_lock(self):
        self.client.admin.command("fsync", lock=True)
        self.assertTrue(self.client.is_locked)
        self.client.admin.command("fsyncUnlock")
        self.assertFalse(self.client.is_locked)


if __name__ == "__main__":
    unittest.main()
