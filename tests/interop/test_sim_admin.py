"""trellis-sim's catalog and operator commands through PyMongo, checked against
mongod's field names, types and error codes: renameCollection, unknown commands,
serverStatus, replSetGetStatus, replSetGetConfig, currentOp, killOp, dbStats,
collStats, getLog, getCmdLineOpts, hostInfo; the 16 MiB document limit and
maxMessageSizeBytes."""
import datetime
import struct
import threading
import time
import unittest

import bson
import pymongo
from bson.int64 import Int64
from bson.son import SON
from pymongo.errors import OperationFailure, WriteError

import wireutil
from simutil import Sim

NUMBER = (int, float, Int64)


class Rename(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "replset", "--nodes", "2")
        cls.client = pymongo.MongoClient(cls.sim.uri, serverSelectionTimeoutMS=5000)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sim.stop()

    def test_rename_keeps_documents_and_indexes_and_replicates(self):
        db = self.client.rn
        db.a.insert_many([{"_id": i, "k": i} for i in range(5)])
        db.a.create_index("k", unique=True)
        self.client.admin.command("renameCollection", "rn.a", to="rn.b", writeConcern={"w": 2})
        self.assertNotIn("a", db.list_collection_names())
        self.assertEqual(sorted(d["_id"] for d in db.b.find()), list(range(5)))
        self.assertIn("k_1", db.b.index_information())
        with self.assertRaises(pymongo.errors.DuplicateKeyError):
            db.b.insert_one({"k": 1})
        secondary = [m for m in self.sim.members if m != self.sim.primary()][0]
        with pymongo.MongoClient(secondary, directConnection=True, readPreference="secondaryPreferred") as s:
            self.assertEqual(s.rn.b.count_documents({}), 5)
            self.assertNotIn("a", s.rn.list_collection_names())

    def test_rename_errors_as_mongod(self):
        db = self.client.rne
        db.x.insert_one({})
        db.y.insert_one({})
        with self.assertRaises(OperationFailure) as e:
            self.client.admin.command("renameCollection", "rne.missing", to="rne.z")
        self.assertEqual((e.exception.code, e.exception.details["codeName"]), (26, "NamespaceNotFound"))
        with self.assertRaises(OperationFailure) as e:
            self.client.admin.command("renameCollection", "rne.x", to="rne.y")
        self.assertEqual((e.exception.code, e.exception.details["codeName"]), (48, "NamespaceExists"))
        with self.assertRaises(OperationFailure) as e:
            db.command("renameCollection", "rne.x", to="rne.w")  # not on admin
        self.assertEqual(e.exception.code, 13)
        self.client.admin.command("renameCollection", "rne.x", to="rne.y", dropTarget=True)
        self.assertEqual(db.list_collection_names(), ["y"])
        # Through the PyMongo collection API too.
        db.y.rename("v")
        self.assertEqual(db.list_collection_names(), ["v"])

    def test_unknown_command(self):
        with self.assertRaises(OperationFailure) as e:
            self.client.admin.command("noSuchThing")
        d = e.exception.details
        self.assertEqual((d["ok"], d["code"], d["codeName"], d["errmsg"]), (0.0, 59, "CommandNotFound", "no such command: 'noSuchThing'"))


class OperatorCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--topology", "replset", "--nodes", "3", "--latency-ms", "0")
        cls.client = pymongo.MongoClient(cls.sim.uri, serverSelectionTimeoutMS=5000)
        cls.client.ops.c.insert_many([{"i": i, "pad": "x" * 100} for i in range(20)], )

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sim.stop()

    def test_server_status(self):
        s = self.client.admin.command("serverStatus")
        self.assertEqual(s["host"], self.sim.primary())
        self.assertEqual(s["process"], "mongod")
        self.assertIsInstance(s["version"], str)
        self.assertIsInstance(s["uptime"], float)
        self.assertIsInstance(s["localTime"], datetime.datetime)
        for k in ("current", "available", "totalCreated"):
            self.assertIsInstance(s["connections"][k], NUMBER, k)
        self.assertGreaterEqual(s["connections"]["current"], 1)
        for k in ("insert", "query", "update", "delete", "getmore", "command"):
            self.assertIsInstance(s["opcounters"][k], NUMBER)
            self.assertIsInstance(s["opcountersRepl"][k], NUMBER)
        self.assertGreaterEqual(s["opcounters"]["insert"], 20)
        for k in ("bytesIn", "bytesOut", "numRequests"):
            self.assertGreater(s["network"][k], 0, k)
        self.assertEqual(s["repl"]["setName"], "rs0")
        self.assertTrue(s["repl"]["isWritablePrimary"])
        self.assertEqual(s["repl"]["me"], self.sim.primary())
        # A secondary counts what replication applied.
        secondary = [m for m in self.sim.members if m != self.sim.primary()][0]
        with pymongo.MongoClient(secondary, directConnection=True) as c:
            self.sim.wait_for(lambda: c.admin.command("serverStatus")["opcountersRepl"]["insert"] >= 20, what="replicated inserts")
            self.assertFalse(c.admin.command("serverStatus")["repl"]["isWritablePrimary"])

    def test_repl_set_get_status_and_config(self):
        st = self.client.admin.command("replSetGetStatus")
        self.assertEqual(st["set"], "rs0")
        self.assertEqual(st["myState"], 1)
        m = {x["name"]: x for x in st["members"]}
        self.assertEqual(set(m), set(self.sim.members))
        me = m[self.sim.primary()]
        self.assertTrue(me["self"])
        self.assertEqual(me["stateStr"], "PRIMARY")
        self.assertIsInstance(me["electionDate"], datetime.datetime)
        self.assertIsInstance(me["optimeDate"], datetime.datetime)
        for name, x in m.items():
            if name == self.sim.primary():
                continue
            self.assertEqual(x["stateStr"], "SECONDARY")
            self.assertIsInstance(x["lastHeartbeat"], datetime.datetime)
            self.assertIsInstance(x["pingMs"], NUMBER)
            self.assertEqual(x["syncSourceHost"], self.sim.primary())
            self.assertIsInstance(x["optimeDate"], datetime.datetime)
        ecm = st["electionCandidateMetrics"]
        for k in ("lastElectionDate", "newTermStartDate", "wMajorityWriteAvailabilityDate"):
            self.assertIsInstance(ecm[k], datetime.datetime, k)
        self.assertEqual(ecm["electionTerm"], st["term"])
        self.assertIsInstance(ecm["lastElectionReason"], str)

        conf = self.client.admin.command("replSetGetConfig")["config"]
        self.assertEqual(conf["_id"], "rs0")
        self.assertEqual(sorted(x["host"] for x in conf["members"]), sorted(self.sim.members))
        self.assertIsInstance(conf["version"], int)
        self.assertIsInstance(conf["settings"]["replicaSetId"], bson.ObjectId)

    def test_new_primary_reports_its_election(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "50") as sim:
            old = sim.primary()
            before = datetime.datetime.utcnow().replace(microsecond=0) - datetime.timedelta(seconds=1)
            sim.ctl("simStepDown", old, secs=30)
            sim.wait_for(lambda: sim.primary() not in (None, old), what="a new primary")
            new = sim.primary()
            with pymongo.MongoClient(new, directConnection=True) as c:
                st = c.admin.command("replSetGetStatus")
                self.assertEqual(st["myState"], 1)
                ecm = st["electionCandidateMetrics"]
                self.assertEqual(ecm["electionTerm"], 2)
                self.assertGreaterEqual(ecm["lastElectionDate"], before)
            with pymongo.MongoClient(old, directConnection=True) as c:
                st = c.admin.command("replSetGetStatus")
                self.assertNotIn("electionCandidateMetrics", st)
                self.assertEqual({x["name"]: x["stateStr"] for x in st["members"]}[new], "PRIMARY")

    def test_current_op_and_kill_op(self):
        c = self.client
        c.admin.command("configureFailPoint", "failCommand", mode="alwaysOn",
                        data={"failCommands": ["distinct"], "blockConnection": True, "blockTimeMS": 20000})
        try:
            result = {}

            def run():
                try:
                    c.ops.command("distinct", "c", key="i")
                except OperationFailure as e:
                    result["code"] = e.code

            t = threading.Thread(target=run)
            t.start()
            ops = []
            deadline = time.monotonic() + 5
            while not ops and time.monotonic() < deadline:
                ops = c.admin.command(SON([("currentOp", 1), ("command.distinct", "c")]))["inprog"]
                time.sleep(0.05)
            self.assertEqual(len(ops), 1)
            op = ops[0]
            self.assertIsInstance(op["opid"], int)
            self.assertIsInstance(op["secs_running"], Int64)
            self.assertEqual(op["ns"], "ops.c")
            self.assertTrue(op["active"])
            c.admin.command("killOp", op=op["opid"])
            t.join(5)
            self.assertFalse(t.is_alive(), "killOp did not interrupt the blocked command")
            self.assertEqual(result.get("code"), 11601)
            # The filter is a query on the inprog documents.
            self.assertEqual(c.admin.command(SON([("currentOp", 1), ("command.nothing", 1)]))["inprog"], [])
            self.assertGreaterEqual(len(c.admin.command("currentOp")["inprog"]), 1)  # itself, at least
        finally:
            c.admin.command("configureFailPoint", "failCommand", mode="off")

    def test_db_and_coll_stats(self):
        s = self.client.ops.command("dbStats")
        self.assertEqual(s["db"], "ops")
        self.assertGreaterEqual(s["objects"], 20)
        self.assertGreater(s["dataSize"], 20 * 100)
        cs = self.client.ops.command("collStats", "c")
        self.assertEqual(cs["ns"], "ops.c")
        self.assertEqual(cs["count"], 20)
        self.assertGreater(cs["size"], 20 * 100)
        self.assertEqual(cs["nindexes"], 1)
        self.assertIn("_id_", cs["indexSizes"])
        with self.assertRaises(OperationFailure) as e:
            self.client.ops.command("collStats", "nope")
        self.assertEqual(e.exception.code, 26)

    def test_get_log_cmd_line_host_info(self):
        log = self.client.admin.command("getLog", "startupWarnings")
        self.assertGreaterEqual(log["totalLinesWritten"], 1)
        self.assertIn("trellis-sim", log["log"][0])
        self.assertEqual(self.client.admin.command("getLog", "*")["names"], ["global", "startupWarnings"])
        self.assertIsInstance(self.client.admin.command("getLog", "global")["log"], list)
        opts = self.client.admin.command("getCmdLineOpts")
        self.assertIn("--topology", opts["argv"])
        self.assertEqual(opts["parsed"]["replication"]["replSet"], "rs0")
        self.assertEqual("%s:%d" % (opts["parsed"]["net"]["bindIp"], opts["parsed"]["net"]["port"]), self.sim.primary())
        hi = self.client.admin.command("hostInfo")
        self.assertIsInstance(hi["system"]["currentTime"], datetime.datetime)
        self.assertGreater(hi["system"]["numCores"], 0)
        self.assertGreater(hi["system"]["memSizeMB"], 0)
        self.assertEqual(hi["os"]["type"], "Linux")


class ExhaustCursor(unittest.TestCase):
    def test_exhaust_get_more_streams_every_batch(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            c.ex.c.insert_many([{"i": i} for i in range(25)])
            conn = wireutil.Conn(sim.uri[len("mongodb://"):].split("/")[0])
            first = conn.command({"find": "c", "batchSize": 4, "sort": {"i": 1}, "$db": "ex"})
            seen = [d["i"] for d in first["cursor"]["firstBatch"]]
            conn.send_msg({"getMore": first["cursor"]["id"], "collection": "c", "batchSize": 4, "$db": "ex"},
                          flags=wireutil.EXHAUST_ALLOWED)
            replies = []
            while True:
                _, flags, doc, _, _, _ = conn.read()
                replies.append(flags)
                seen += [d["i"] for d in doc["cursor"]["nextBatch"]]
                if not flags & wireutil.MORE_TO_COME:
                    self.assertEqual(doc["cursor"]["id"], 0)
                    break
            self.assertEqual(seen, list(range(25)))
            self.assertEqual(len(replies), 6)  # 21 documents in batches of 4, the last one ends the stream
            # Without exhaustAllowed, one reply per getMore.
            again = conn.command({"find": "c", "batchSize": 20, "$db": "ex"})
            more = conn.command({"getMore": again["cursor"]["id"], "collection": "c", "batchSize": 2, "$db": "ex"})
            self.assertEqual(len(more["cursor"]["nextBatch"]), 2)
            self.assertNotEqual(more["cursor"]["id"], 0)
            conn.close()
            c.close()


class SizeLimits(unittest.TestCase):
    def test_oversized_document_and_message(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            hello = c.admin.command("hello")
            self.assertEqual(hello["maxBsonObjectSize"], 16 * 1024 * 1024)
            self.assertEqual(hello["maxMessageSizeBytes"], 48000000)
            # PyMongo refuses to send such a document, so send it raw, in an OP_MSG document sequence.
            big = {"_id": 1, "s": "x" * (16 * 1024 * 1024)}  # just over 16 MiB with its field names
            self.assertGreater(len(bson.encode(big)), 16 * 1024 * 1024)
            conn = wireutil.Conn(sim.uri[len("mongodb://"):].split("/")[0])
            body = struct.pack("<I", 0) + b"\x00" + bson.encode({"insert": "big", "$db": "lim"})
            docs = bson.encode(big)
            seq = b"\x01" + struct.pack("<i", 4 + len(b"documents\x00") + len(docs)) + b"documents\x00" + docs
            payload = body + seq
            conn.sock.sendall(struct.pack("<iiii", 16 + len(payload), 99, 0, wireutil.OP_MSG) + payload)
            reply = conn.read()[2]
            self.assertEqual(reply["ok"], 1.0)
            self.assertEqual(reply["n"], 0)
            self.assertEqual(reply["writeErrors"][0]["code"], 10334)
            self.assertEqual(reply["writeErrors"][0]["codeName"], "BSONObjectTooLarge")
            # An update that would grow a document past 16 MiB.
            c.lim.c.insert_one({"_id": 2, "s": "y" * (9 * 1024 * 1024)})
            with self.assertRaises(WriteError) as e:
                c.lim.c.update_one({"_id": 2}, {"$set": {"t": "z" * (8 * 1024 * 1024)}})
            self.assertEqual(e.exception.code, 10334)
            self.assertEqual(len(c.lim.c.find_one({"_id": 2})["s"]), 9 * 1024 * 1024)
            self.assertNotIn("t", c.lim.c.find_one({"_id": 2}))
            # A message over maxMessageSizeBytes: the connection is closed, nothing is read past the header.
            conn2 = wireutil.Conn(sim.uri[len("mongodb://"):].split("/")[0])
            conn2.sock.sendall(struct.pack("<iiii", 48000001, 100, 0, wireutil.OP_MSG))
            conn2.sock.settimeout(5)
            self.assertEqual(conn2.sock.recv(16), b"")
            conn.close()
            conn2.close()
            self.assertEqual(c.lim.c.count_documents({}), 1)
            c.close()


if __name__ == "__main__":
    unittest.main()
