"""Faults and controls of trellis-sim: partitions, fsync locks, the rest of
failCommand, unordered writes, filters on listDatabases, clean shutdown."""
import signal
import threading
import time
import unittest

import pymongo
from pymongo.errors import BulkWriteError, OperationFailure

import wireutil
from simutil import Sim


class Partitions(unittest.TestCase):
    def test_hung_primary_is_replaced_then_rejoins(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "100") as sim:
            c = pymongo.MongoClient(sim.uri, heartbeatFrequencyMS=500, socketTimeoutMS=1000, connectTimeoutMS=1000,
                                    serverSelectionTimeoutMS=10000, retryWrites=True)
            c.p.c.insert_one({"before": True})
            old = sim.primary()
            sim.ctl("simPartition", old, mode="hang")
            sim.wait_for(lambda: sim.primary() not in (None, old), what="new primary while the old one hangs")
            deadline = time.monotonic() + 15
            while True:
                try:
                    c.p.c.insert_one({"after": True})
                    break
                except pymongo.errors.PyMongoError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            self.assertNotEqual("%s:%d" % c.primary, old)
            sim.ctl("simHeal", old)
            sim.wait_for(lambda: sim.role(old) == "secondary", what="healed member is a secondary")
            self.assertEqual(c.p.c.count_documents({}), 2)
            c.close()

    def test_refused_and_dropped_replies(self):
        with Sim("--topology", "replset", "--nodes", "3", "--election-delay-ms", "100") as sim:
            victim = sim.members[2]
            sim.ctl("simPartition", victim, mode="refuse")
            with self.assertRaises(OSError):
                wireutil.Conn(victim, timeout=2).command({"ping": 1, "$db": "admin"})
            sim.ctl("simHeal", victim)
            conn = wireutil.Conn(victim, timeout=2)
            self.assertEqual(conn.command({"ping": 1, "$db": "admin"})["ok"], 1.0)
            sim.ctl("simPartition", victim, mode="drop")
            conn.send_msg({"ping": 1, "$db": "admin"})
            conn.sock.settimeout(0.5)
            with self.assertRaises(OSError):  # socket.timeout: no reply comes
                conn.read()
            conn.close()


class FsyncLock(unittest.TestCase):
    def test_writes_wait_for_unlock(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            c.admin.command("fsync", lock=True)
            self.assertTrue(c.admin.command("currentOp")["fsyncLock"])
            done = threading.Event()
            writer = pymongo.MongoClient(sim.uri)
            t = threading.Thread(target=lambda: (writer.f.c.insert_one({"x": 1}), done.set()))
            t.start()
            time.sleep(0.5)
            self.assertFalse(done.is_set(), "the write must wait while the lock is held")
            self.assertEqual(c.f.c.count_documents({}), 0)  # reads go on
            c.admin.command("fsyncUnlock")
            t.join(5)
            self.assertTrue(done.is_set())
            self.assertEqual(c.f.c.count_documents({}), 1)
            c.close()
            writer.close()


class MoreFailCommand(unittest.TestCase):
    def test_skip_block_and_labels(self):
        with Sim("--topology", "replset", "--nodes", "3") as sim:
            conn = wireutil.Conn(sim.primary())
            conn.command({"configureFailPoint": "failCommand", "mode": {"skip": 2},
                          "data": {"failCommands": ["ping"], "errorCode": 8, "errorLabels": ["Custom"]}, "$db": "admin"})
            self.assertEqual(conn.command({"ping": 1, "$db": "admin"})["ok"], 1.0)
            self.assertEqual(conn.command({"ping": 1, "$db": "admin"})["ok"], 1.0)
            failed = conn.command({"ping": 1, "$db": "admin"})
            self.assertEqual((failed["ok"], failed["code"], failed["codeName"]), (0.0, 8, "UnknownError"))
            self.assertEqual(failed["errorLabels"], ["Custom"])
            conn.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                          "data": {"failCommands": ["ping"], "blockConnection": True, "blockTimeMS": 400},
                          "$db": "admin"})
            start = time.monotonic()
            self.assertEqual(conn.command({"ping": 1, "$db": "admin"})["ok"], 1.0)
            self.assertGreater(time.monotonic() - start, 0.35)
            conn.command({"configureFailPoint": "failCommand", "mode": "off", "$db": "admin"})
            conn.close()


class Writes(unittest.TestCase):
    def test_unordered_insert_reports_every_error(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            with self.assertRaises(BulkWriteError) as ctx:
                c.w.c.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=False)
            details = ctx.exception.details
            self.assertEqual(details["nInserted"], 3)
            self.assertEqual([e["index"] for e in details["writeErrors"]], [1, 3])
            self.assertTrue(all(e["code"] == 11000 for e in details["writeErrors"]))
            with self.assertRaises(BulkWriteError) as ctx:
                c.w.d.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}], ordered=True)
            self.assertEqual(ctx.exception.details["nInserted"], 1)
            c.close()

    def test_list_databases_filter_and_name_only(self):
        with Sim() as sim:
            c = pymongo.MongoClient(sim.uri)
            for name in ("alpha", "beta", "gamma"):
                c[name].c.insert_one({})
            r = c.admin.command("listDatabases", nameOnly=True, filter={"name": {"$in": ["alpha", "gamma"]}})
            self.assertEqual(r["databases"], [{"name": "alpha"}, {"name": "gamma"}])
            full = c.admin.command("listDatabases")
            self.assertIn("sizeOnDisk", full["databases"][0])
            self.assertIn("totalSize", full)
            c.close()


class Shutdown(unittest.TestCase):
    def test_sigint_and_sigterm_exit_cleanly(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            sim = Sim("--topology", "replset", "--nodes", "3")
            # close() after the stop sends endSessions, which waits serverSelectionTimeoutMS for
            # a server that is gone: keep that wait short.
            c = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=2000)
            c.s.c.insert_one({})
            sim.proc.send_signal(sig)
            self.assertEqual(sim.proc.wait(10), 0)
            self.assertIn("stopping on", sim.stderr())
            c.close()
            sim.stop()


if __name__ == "__main__":
    unittest.main()
