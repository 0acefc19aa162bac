"""trellis-sim stops within a second of SIGTERM/SIGINT, exit status 0, whatever
is connected: replica-set clients whose monitors hold awaitable (streaming)
hellos, an open exhaust cursor, a command held by a blocking fail point, a
write waiting for a write concern that cannot be satisfied, half-open sockets,
a control-port client, and (when node_modules is installed) the Node.js driver."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import pymongo

import wireutil
from simutil import Sim

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")

# Node: a replica-set client (its monitors hold streaming hellos) and an open cursor,
# then it prints "connected" and waits to be cut off.
NODE_CLIENT = r"""
const { MongoClient } = require('mongodb');
(async () => {
  const c = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 5000, heartbeatFrequencyMS: 500 });
  c.on('error', () => {});
  await c.connect();
  const coll = c.db('stop').collection('node');
  await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ i })));
  const cursor = coll.find({}, { batchSize: 5 });
  await cursor.next();
  console.log('connected');
  setInterval(() => {}, 1000);
})().catch((e) => { console.error(e); process.exit(3); });
"""


def half_open(address, data):
    """A connection that sent `data` (maybe part of a message) and then nothing."""
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    if data:
        s.sendall(data)
    return s


def stop_within(test, sim, sig, limit=1.0):
    """Sends sig and asserts exit status 0 within `limit` seconds."""
    t0 = time.monotonic()
    sim.proc.send_signal(sig)
    try:
        rc = sim.proc.wait(limit)
    except subprocess.TimeoutExpired:
        sim.proc.wait(10)
        test.fail("trellis-sim took more than %.1f s to stop:\n%s" % (limit, sim.stderr()[-3000:]))
    elapsed = time.monotonic() - t0
    test.assertEqual(rc, 0, sim.stderr()[-3000:])
    test.assertLess(elapsed, limit)
    test.assertNotIn("abandoning", sim.stderr(), "stop() had to abandon pending work")
    return elapsed


class StopWithClients(unittest.TestCase):
    def test_replset_with_everything_connected(self):
        sim = Sim("--topology", "replset", "--nodes", "3")
        clients, threads, sockets = [], [], []
        node = None
        try:
            primary = sim.primary()
            rs = pymongo.MongoClient(sim.uri, heartbeatFrequencyMS=500, serverSelectionTimeoutMS=5000)
            clients.append(rs)
            rs.stop.c.insert_many([{"i": i} for i in range(300)])
            # Streaming monitors: each has received a topologyVersion and waits in an awaitable hello.
            # (PyMongo 3.11 has no public topology_description: its topology's description.)
            sim.wait_for(lambda: len(rs._topology.description.server_descriptions()) == 3 and
                         all(s.topology_version is not None for s in rs._topology.description.server_descriptions().values()),
                         what="streaming hellos on every member")

            # An exhaust cursor (OP_MSG exhaustAllowed getMore; PyMongo 3.11 would use OP_QUERY, which
            # modern servers refuse) that streams batches to a reader that stopped reading: the
            # simulator's writes to it are stuck on a full socket buffer.
            direct = pymongo.MongoClient(primary, directConnection=True)
            clients.append(direct)
            direct.stop.big.insert_many([{"i": i, "pad": "p" * 1000} for i in range(4000)])
            ex = wireutil.Conn(primary)
            sockets.append(ex.sock)
            first = ex.command({"find": "big", "batchSize": 2, "$db": "stop"})
            ex.send_msg({"getMore": first["cursor"]["id"], "collection": "big", "batchSize": 2, "$db": "stop"},
                        flags=wireutil.EXHAUST_ALLOWED)
            opcode, flags, doc = ex.read()[:3]
            self.assertTrue(flags & wireutil.MORE_TO_COME, "the getMore reply must stream (moreToCome)")
            self.assertEqual(len(doc["cursor"]["nextBatch"]), 2)

            # A command held by a fail point for 30 s.
            direct.admin.command("configureFailPoint", "failCommand", mode="alwaysOn",
                                 data={"failCommands": ["count"], "blockConnection": True, "blockTimeMS": 30000})
            blocked = pymongo.MongoClient(primary, directConnection=True, socketTimeoutMS=60000)
            clients.append(blocked)
            threads.append(threading.Thread(target=lambda: _swallow(lambda: blocked.stop.command("count", "c")), daemon=True))

            # A write waiting for w:3 with a secondary gone and no wtimeout.
            sim.ctl("simKill", [m for m in sim.members if m != primary][0])
            waiting = pymongo.MongoClient(primary, directConnection=True, socketTimeoutMS=60000)
            clients.append(waiting)
            threads.append(threading.Thread(target=lambda: _swallow(
                lambda: waiting.stop.command("insert", "w", documents=[{"x": 1}], writeConcern={"w": 3})), daemon=True))
            for t in threads:
                t.start()

            # Half-open sockets: nothing sent, half a header, a header promising more than is sent.
            sockets.append(half_open(primary, b""))
            sockets.append(half_open(primary, b"\x40\x00\x00\x00\x01\x00"))
            sockets.append(half_open(primary, struct.pack("<iiii", 1000, 7, 0, 2013) + b"\x00\x00"))
            sockets.append(half_open(sim.control, b""))
            # A control-port client that has talked.
            sim.status()

            if shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "mongodb")):
                node = subprocess.Popen(["node", "-e", NODE_CLIENT, sim.uri], cwd=NODE_DIR,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                line = node.stdout.readline().strip()
                self.assertEqual(line, "connected", node.stderr.read() if node.poll() is not None else "")
            else:
                print("note: no Node.js client in this run (%s/node_modules/mongodb is absent)" % NODE_DIR, file=sys.stderr)

            # The held count and the waiting write are still held when the signal comes.
            time.sleep(0.3)
            self.assertTrue(all(t.is_alive() for t in threads), "the held commands returned early")
            stop_within(self, sim, signal.SIGTERM)
        finally:
            for s in sockets:
                s.close()
            for c in clients:
                close_quickly(c)
            if node is not None:
                node.kill()
                node.wait()
                node.stdout.close()
                node.stderr.close()
            sim.stop()

    def test_sigint_sharded_and_standalone(self):
        for args, sig in ((("--topology", "sharded", "--shard-replset", "--nodes", "2"), signal.SIGINT),
                          (("--topology", "standalone"), signal.SIGTERM)):
            sim = Sim(*args)
            c = pymongo.MongoClient(sim.uri, heartbeatFrequencyMS=500)
            try:
                c.s.c.insert_many([{"i": i} for i in range(50)])
                cur = c.s.c.find({}, batch_size=5)
                next(cur)
                s = half_open(sim.members[0], b"\x10")
                stop_within(self, sim, sig)
                s.close()
            finally:
                close_quickly(c)
                sim.stop()


def close_quickly(client):
    """Closes a client whose server is gone without PyMongo 3.11's endSessions, which would
    wait serverSelectionTimeoutMS for a server that will not come back."""
    client._topology.pop_all_sessions()
    client.close()


def _swallow(f):
    try:
        f()
    except Exception:
        pass


if __name__ == "__main__":
    unittest.main()
