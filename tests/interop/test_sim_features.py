"""trellis-sim behaviours that PyMongo's public API does not show directly:
compression, cursors timing out, write concern, rollback, retryable writes,
hello fields, replica-set commands, copydb, streaming hello, the ctl tool."""
import json
import os
import subprocess
import threading
import time
import unittest
import uuid

import bson
import pymongo
from bson.int64 import Int64
from pymongo.errors import OperationFailure, WriteConcernError
from pymongo.write_concern import WriteConcern

import wireutil
from simutil import SIM, Sim


class Compression(unittest.TestCase):
    def test_zlib_negotiated_and_used(self):
        with Sim() as sim:
            conn = wireutil.Conn(sim.members[0])
            hello = conn.command({"hello": 1, "compression": ["lz4", "zlib", "snappy"], "$db": "admin"})
            self.assertEqual(hello["compression"], ["zlib", "snappy"])  # what it has, in the client's order
            conn.send_msg({"ping": 1, "$db": "admin"}, compress=True)
            opcode, _, reply, _, _, compressed = conn.read()
            self.assertTrue(compressed)
            self.assertEqual(reply["ok"], 1.0)
            # hello is never compressed in the answer, as the compression spec asks.
            conn.send_msg({"hello": 1, "$db": "admin"}, compress=True)
            self.assertFalse(conn.read()[5])
            conn.close()
            c = pymongo.MongoClient(sim.uri, compressors="zlib")
            c.z.c.insert_many([{"blob": "x" * 1000} for _ in range(20)])
            self.assertEqual(c.z.c.count_documents({}), 20)
            c.close()


class Cursors(unittest.TestCase):
    def test_idle_cursor_is_killed(self):
        with Sim("--cursor-timeout-ms", "300") as sim:
            c = pymongo.MongoClient(sim.uri)
            c.cur.c.insert_many([{"i": i} for i in range(10)])
            cursor = c.cur.c.find(batch_size=2)
            next(cursor), next(cursor)
            time.sleep(0.7)
            with self.assertRaises(OperationFailure) as ctx:
                list(cursor)
            self.assertEqual(ctx.exception.code, 43)
            c.close()

    def test_kill_cursors_reply(self):
        with Sim() as sim:
            conn = wireutil.Conn(sim.members[0])
            conn.command({"insert": "c", "documents": [{"i": i} for i in range(5)], "$db": "k"})
            first = conn.command({"find": "c", "batchSize": 1, "$db": "k"})
            cid = first["cursor"]["id"]
            self.assertNotEqual(cid, 0)
            killed = conn.command({"killCursors": "c", "cursors": [cid, Int64(12345)], "$db": "k"})
            self.assertEqual(killed["cursorsKilled"], [cid])
            self.assertEqual(killed["cursorsNotFound"], [12345])
            conn.close()


class WriteConcerns(unittest.TestCase):
    def test_w_n_timeout_and_majority(self):
        with Sim("--topology", "replset", "--nodes", "3", "--lag-ms", "1000") as sim:
            c = pymongo.MongoClient(sim.uri)
            coll = c.wc.get_collection("c", write_concern=WriteConcern(w=3, wtimeout=200))
            with self.assertRaises(WriteConcernError) as ctx:
                coll.insert_one({"x": 1})
            self.assertEqual(ctx.exception.code, 64)
            self.assertTrue(ctx.exception.details["errInfo"]["wtimeout"])  # details is the writeConcernError itself
            start = time.monotonic()
            c.wc.get_collection("c", write_concern=WriteConcern(w="majority", wtimeout=5000)).insert_one({"x": 2})
            self.assertGreater(time.monotonic() - start, 0.8)  # it waited for the lagging secondaries
            c.close()

    def test_unreplicated_w1_write_is_rolled_back(self):
        with Sim("--topology", "replset", "--nodes", "3", "--lag-ms", "1500", "--election-delay-ms", "100") as sim:
            c = pymongo.MongoClient(sim.uri, retryWrites=False, heartbeatFrequencyMS=500)
            c.rb.get_collection("c", write_concern=WriteConcern(w="majority")).insert_one({"_id": "majority"})
            old = sim.primary()
            c.rb.get_collection("c", write_concern=WriteConcern(w=1)).insert_one({"_id": "w1"})
            sim.ctl("simKill", old)
            sim.wait_for(lambda: sim.primary() not in (None, old), what="new primary")
            sim.ctl("simRestart", old)
            sim.wait_for(lambda: sim.role(old) == "secondary", what="old primary back as a secondary")
            direct = pymongo.MongoClient(old, directConnection=True, readPreference="secondaryPreferred")
            sim.wait_for(lambda: direct.rb.c.count_documents({"_id": "w1"}) == 0, what="rollback of the w:1 write")
            self.assertEqual(direct.rb.c.count_documents({"_id": "majority"}), 1)
            fresh = pymongo.MongoClient(sim.uri)
            self.assertEqual(sorted(d["_id"] for d in fresh.rb.c.find()), ["majority"])
            for x in (c, direct, fresh):
                x.close()


class RetryableWrites(unittest.TestCase):
    def test_same_txn_number_applies_once(self):
        with Sim("--topology", "replset", "--nodes", "3") as sim:
            conn = wireutil.Conn(sim.primary())
            lsid = {"id": bson.Binary(uuid.uuid4().bytes, 4)}
            cmd = {"insert": "c", "documents": [{"v": 1}], "lsid": lsid, "txnNumber": Int64(7), "$db": "rw"}
            first = conn.command(cmd)
            again = conn.command(cmd)
            self.assertEqual(first, again)
            self.assertEqual(conn.command({"count": "c", "$db": "rw"})["n"], 1)
            cmd["txnNumber"] = Int64(8)
            conn.command(cmd)
            self.assertEqual(conn.command({"count": "c", "$db": "rw"})["n"], 2)
            conn.close()


MEMBERS_TOML = """
topology = "replset"
nodes = 3
arbiter = true
[[members]]
priority = 2
tags = { dc = "ny" }
[[members]]
priority = 0
[[members]]
hidden = true
"""


class HelloFields(unittest.TestCase):
    def test_replica_set_hello(self):
        with Sim(config=MEMBERS_TOML) as sim:
            p, passive, hidden, arbiter = sim.members
            conn = wireutil.Conn(p)
            h = conn.command({"hello": 1, "helloOk": True, "$db": "admin"})
            self.assertTrue(h["isWritablePrimary"])
            self.assertNotIn("ismaster", h)
            self.assertEqual(h["setName"], "rs0")
            self.assertEqual(h["hosts"], [p])
            self.assertEqual(h["passives"], [passive])
            self.assertEqual(h["arbiters"], [arbiter])
            self.assertEqual(h["primary"], p)
            self.assertEqual(h["me"], p)
            self.assertEqual(h["tags"], {"dc": "ny"})
            self.assertEqual(h["electionId"], bson.ObjectId("7fffffff0000000000000001"))
            self.assertEqual(h["maxWireVersion"], 21)
            self.assertTrue(h["helloOk"])
            for key in ("maxBsonObjectSize", "maxMessageSizeBytes", "maxWriteBatchSize", "localTime",
                        "logicalSessionTimeoutMinutes", "connectionId", "minWireVersion", "setVersion"):
                self.assertIn(key, h)
            self.assertIn("opTime", h["lastWrite"])
            self.assertIn("lastWriteDate", h["lastWrite"])
            self.assertEqual(set(h["topologyVersion"]), {"processId", "counter"})
            im = conn.command({"isMaster": 1, "$db": "admin"})
            self.assertTrue(im["ismaster"])
            conn.close()
            hc = wireutil.Conn(hidden)
            hh = hc.command({"hello": 1, "$db": "admin"})
            self.assertTrue(hh["hidden"])
            self.assertTrue(hh["secondary"])
            hc.close()
            ac = wireutil.Conn(arbiter)
            ah = ac.command({"hello": 1, "$db": "admin"})
            self.assertTrue(ah["arbiterOnly"])
            self.assertFalse(ah["secondary"])
            ac.close()

    def test_op_query_hello_and_legacy_reply(self):
        with Sim() as sim:
            conn = wireutil.Conn(sim.members[0])
            conn.send_query("admin.$cmd", {"isMaster": 1})
            opcode, _, reply, _, _, _ = conn.read()
            self.assertEqual(opcode, wireutil.OP_REPLY)
            self.assertTrue(reply["ismaster"])
            conn.close()


class ReplicaSetCommands(unittest.TestCase):
    def test_status_step_down_and_reconfig(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "100") as sim:
            c = pymongo.MongoClient(sim.uri, heartbeatFrequencyMS=500)
            status = c.admin.command("replSetGetStatus")
            self.assertEqual(status["set"], "rs0")
            self.assertEqual([m["stateStr"] for m in status["members"]], ["PRIMARY", "SECONDARY", "SECONDARY"])
            old = sim.primary()
            try:
                c.admin.command("replSetStepDown", 30)
            except pymongo.errors.AutoReconnect:
                pass
            sim.wait_for(lambda: sim.primary() not in (None, old), what="new primary after replSetStepDown")
            new = sim.primary()
            conn = wireutil.Conn(new)
            cfg = {"_id": "rs0", "version": 5,
                   "members": [{"_id": i, "host": h, "priority": 0 if h == old else 1} for i, h in enumerate(sim.members)]}
            self.assertEqual(conn.command({"replSetReconfig": cfg, "$db": "admin"})["ok"], 1.0)
            self.assertEqual(conn.command({"hello": 1, "$db": "admin"})["setVersion"], 5)
            self.assertIn(old, conn.command({"hello": 1, "$db": "admin"})["passives"])
            bad = conn.command({"replSetReconfig": dict(cfg, version=4), "$db": "admin"})
            self.assertEqual(bad["code"], 103)
            conn.close()
            c.close()

    def test_add_and_remove_member(self):
        with Sim("--topology", "replset", "--nodes", "3") as sim:
            c = pymongo.MongoClient(sim.uri, heartbeatFrequencyMS=500)
            c.am.c.insert_many([{"i": i} for i in range(10)])
            added = sim.ctl("simAddMember")["host"]
            sim.wait_for(lambda: len(c.nodes) == 4, what="the driver sees the new member")
            # Short server selection: close() sends endSessions to the member removed by then.
            direct = pymongo.MongoClient(added, directConnection=True, readPreference="secondaryPreferred",
                                         serverSelectionTimeoutMS=2000)
            sim.wait_for(lambda: direct.am.c.count_documents({}) == 10, what="initial sync of the new member")
            sim.ctl("simRemoveMember", added)
            sim.wait_for(lambda: len(c.nodes) == 3, what="the driver drops the removed member")
            direct.close()
            c.close()


class LegacyCommands(unittest.TestCase):
    def test_copydb_only_before_4_2(self):
        with Sim("--max-wire-version", "7") as sim:
            c = pymongo.MongoClient(sim.uri)
            c.src.a.insert_many([{"i": i} for i in range(3)])
            c.src.a.create_index("i", unique=True)
            c.admin.command("copydb", fromdb="src", todb="dst")
            self.assertEqual(c.dst.a.count_documents({}), 3)
            self.assertIn("i_1", c.dst.a.index_information())
            self.assertEqual(c.admin.command("getLastError")["ok"], 1.0)
            c.close()
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            with self.assertRaises(OperationFailure) as ctx:
                c.admin.command("copydb", fromdb="src", todb="dst")
            self.assertEqual(ctx.exception.code, 59)
            c.close()

    def test_slave_refuses_reads_without_secondary_ok(self):
        with Sim("--topology", "master-slave", "--nodes", "2") as sim:
            conn = wireutil.Conn(sim.members[1])
            r = conn.command({"find": "c", "$db": "ms"})
            self.assertEqual(r["code"], 13435)
            ok = conn.command({"find": "c", "$db": "ms", "$readPreference": {"mode": "secondaryPreferred"}})
            self.assertEqual(ok["ok"], 1.0)
            conn.send_query("ms.$cmd", {"count": "c"}, flags=4)  # OP_QUERY secondaryOk bit
            self.assertEqual(conn.read()[2]["ok"], 1.0)
            conn.close()


class StreamingHello(unittest.TestCase):
    def test_awaitable_hello_streams_changes(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "100") as sim:
            member = sim.members[1]
            conn = wireutil.Conn(member)
            first = conn.command({"hello": 1, "$db": "admin"})
            tv = first["topologyVersion"]
            start = time.monotonic()
            timer = threading.Timer(0.3, lambda: sim.ctl("simStepDown", sim.members[0], secs=30))
            timer.start()
            request_id = conn.send_msg({"hello": 1, "topologyVersion": tv, "maxAwaitTimeMS": Int64(10000),
                                        "$db": "admin"}, flags=wireutil.EXHAUST_ALLOWED)
            _, flags, reply, reply_id, response_to, _ = conn.read()
            elapsed = time.monotonic() - start
            self.assertTrue(flags & wireutil.MORE_TO_COME)
            self.assertEqual(response_to, request_id)
            self.assertGreater(reply["topologyVersion"]["counter"], tv["counter"])
            self.assertGreater(elapsed, 0.25)  # it waited for the change ...
            self.assertLess(elapsed, 5)        # ... not for maxAwaitTimeMS
            # The stream goes on without another request: the election is the next change.
            _, flags2, reply2, _, response_to2, _ = conn.read()
            self.assertTrue(flags2 & wireutil.MORE_TO_COME)
            self.assertEqual(response_to2, reply_id)
            self.assertGreater(reply2["topologyVersion"]["counter"], reply["topologyVersion"]["counter"])
            timer.join()
            conn.close()


class Tooling(unittest.TestCase):
    def test_ctl(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "100") as sim:
            out = subprocess.run([SIM, "ctl", "--control", sim.control, "status"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            status = json.loads(out.stdout)
            self.assertEqual(len(status["members"]), 3)
            old = status["primary"]
            out = subprocess.run([SIM, "ctl", "--control", sim.control, "stepdown", old], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            sim.wait_for(lambda: sim.primary() not in (None, old), what="new primary after ctl stepdown")
            bad = subprocess.run([SIM, "ctl", "--control", sim.control, "frobnicate"], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 2)

    def test_bad_config_names_file_line_and_key(self):
        with Sim() as probe:  # for a temporary directory only
            path = os.path.join(probe.dir.name, "bad.toml")
            with open(path, "w") as f:
                f.write('topology = "replset"\nnodes = -3\n')
            out = subprocess.run([SIM, "--config", path], capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 2)
            self.assertIn("bad.toml:2:9: nodes must be a non-negative integer", out.stderr)


if __name__ == "__main__":
    unittest.main()
