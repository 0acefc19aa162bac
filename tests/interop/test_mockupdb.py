"""Trellis against python3-mockupdb: a scripted replica set that nobody on the team wrote.

Three MockupDB servers on 127.0.0.1 answer hello/isMaster as members of replica set "rs"
(polled monitoring: no topologyVersion); every other request is queued for the test, which
checks what arrived where and scripts the reply. The client is trellis-interop-client
($TRELLIS_INTEROP_CLIENT, built from client_driver.cpp), driven by JSON lines.

Cases: discovery from one seed; reads routed by read preference (with $readPreference as the
Server Selection spec says); a write answered NotWritablePrimary while the set elects another
member, retried once there with the same lsid and txnNumber (Retryable Writes spec).
"""
import datetime
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import unittest

from bson import ObjectId, json_util
from mockupdb import MockupDB

CLIENT = os.environ.get("TRELLIS_INTEROP_CLIENT", "")

SET_NAME = "rs"
# MongoDB 5.0: OP_MSG, sessions, and (4.4+) the server labels retryable errors itself, so
# the client must retry on RetryableWriteError and on nothing else. Below 6.0 (17), SDAM
# orders primaries by (setVersion, electionId).
MAX_WIRE_VERSION = 13
# Each test step waits at most this long for a request or a result.
STEP_TIMEOUT = 8.0


def setUpModule():
    if not CLIENT or not os.path.exists(CLIENT):
        raise RuntimeError("TRELLIS_INTEROP_CLIENT is not set to the trellis-interop-client program "
                           "(CTest sets it; got %r)" % CLIENT)


class MockReplicaSet:
    """MockupDB servers answering hello as one replica set whose primary the test chooses."""

    def __init__(self, members=3, primary=0, tags=None):
        self._lock = threading.Lock()
        self.servers = []
        for _ in range(members):
            s = MockupDB(request_timeout=STEP_TIMEOUT)
            # MockupDB binds ('localhost', port) and names itself "localhost:port"; bind the
            # IPv4 loopback by address instead, so that the names in hosts are what the client
            # dials (port None: the OS picks one).
            s._address = ("127.0.0.1", None)
            self.servers.append(s)
        self.tags = tags or [{} for _ in range(members)]
        self.primary = primary
        self.election = 1  # electionId counter; raised on every election
        self.set_version = 1
        self.hellos = [0] * members
        for i, s in enumerate(self.servers):
            s.autoresponds(self._responder(i))
            s.run()
        self.addresses = ["127.0.0.1:%d" % s.port for s in self.servers]

    def stop(self):
        for s in self.servers:
            s.stop()

    def elect(self, member):
        """Makes `member` the primary: a higher electionId, the same setVersion (SDAM accepts it)."""
        with self._lock:
            self.primary = member
            self.election += 1

    def hello_count(self, member):
        with self._lock:
            return self.hellos[member]

    def hello_reply(self, member, command):
        with self._lock:
            self.hellos[member] += 1
            is_primary = self.primary == member
            reply = {
                "ok": 1,
                # The legacy command's field name, or hello's.
                ("isWritablePrimary" if command == "hello" else "ismaster"): is_primary,
                "secondary": self.primary is not None and not is_primary,
                "setName": SET_NAME,
                "setVersion": self.set_version,
                "hosts": list(self.addresses),
                "me": self.addresses[member],
                "minWireVersion": 0,
                "maxWireVersion": MAX_WIRE_VERSION,
                "maxBsonObjectSize": 16 * 1024 * 1024,
                "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000,
                "logicalSessionTimeoutMinutes": 30,
                "localTime": datetime.datetime.utcnow(),
                "connectionId": 1,
                "helloOk": True,
            }
            if self.primary is not None:
                reply["primary"] = self.addresses[self.primary]
            if is_primary:
                reply["electionId"] = ObjectId("7fffffff%016x" % self.election)
            if self.tags[member]:
                reply["tags"] = dict(self.tags[member])
            return reply

    def _responder(self, member):
        def respond(request):
            name = (getattr(request, "command_name", None) or "").lower()
            if name in ("hello", "ismaster"):
                return request.replies(self.hello_reply(member, name))
            if name == "endsessions":
                return request.replies({"ok": 1})
            return False  # queued for the test
        return respond


class Driver:
    """trellis-interop-client as a subprocess: one JSON line in, one JSON line out."""

    def __init__(self):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def send(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def result(self, timeout=STEP_TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("trellis-interop-client gave no result within %.0f s; stderr: %s"
                                 % (timeout, self.stderr()))
        if line is None:
            raise AssertionError("trellis-interop-client exited (%s); stderr: %s"
                                 % (self.proc.poll(), self.stderr()))
        return json_util.loads(line)

    def call(self, timeout=STEP_TIMEOUT, **command):
        self.send(**command)
        return self.result(timeout)

    def ok(self, timeout=STEP_TIMEOUT, **command):
        """Sends a command and returns its result, which must be a success."""
        self.send(**command)
        return self.succeeded(command["op"], timeout)

    def succeeded(self, op, timeout=STEP_TIMEOUT):
        """The next result, which must be a success, of the command `op` sent before."""
        r = self.result(timeout)
        if not r.get("ok"):
            raise AssertionError("%s failed: %r" % (op, r))
        return r["result"]

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send(op="quit")
                self.proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.log.close()


def wait_until(predicate, what, timeout=STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(0.1)
    raise AssertionError("timed out after %.0f s waiting for %s; last: %r" % (timeout, what, last))


class MockupDBReplicaSet(unittest.TestCase):
    TAGS = [{}, {"dc": "west"}, {"dc": "east"}]

    def setUp(self):
        self.started = time.monotonic()
        self.rs = MockReplicaSet(3, primary=0, tags=self.TAGS)
        self.driver = Driver()

    def tearDown(self):
        # The client first (it must not see the servers vanish mid-test), then the servers.
        self.driver.stop()
        self.rs.stop()
        self.assertLess(time.monotonic() - self.started, 20.0, "the test took too long")

    # ------------------------------------------------------------------ helpers

    def connect(self, seed):
        self.driver.ok(op="connect", uri="mongodb://%s/?replicaSet=%s&heartbeatFrequencyMS=500"
                                         "&serverSelectionTimeoutMS=5000" % (seed, SET_NAME))

    def wait_for_topology(self, primary):
        """Until the client knows every member, with `primary` as RSPrimary and the rest RSSecondary."""
        want = {a: ("RSPrimary" if i == primary else "RSSecondary") for i, a in enumerate(self.rs.addresses)}

        def check():
            t = self.driver.ok(op="topology")
            got = {s["address"]: s["type"] for s in t["servers"]}
            return t["type"] == "ReplicaSetWithPrimary" and got == want, t
        return wait_until(check, "a topology with %s as primary" % self.rs.addresses[primary])

    def receives(self, member, command_name):
        """The next request queued on `member`, which must be `command_name`."""
        request = self.rs.servers[member].receives(timeout=STEP_TIMEOUT)
        self.assertIsNotNone(request, "server %s stopped" % self.rs.addresses[member])
        self.assertEqual(getattr(request, "command_name", None), command_name,
                         "%s received %r" % (self.rs.addresses[member], request))
        return request

    def assert_nothing_queued(self, *members):
        for m in members:
            self.assertFalse(self.rs.servers[m].got(timeout=0),
                             "%s received an unexpected request" % self.rs.addresses[m])

    @staticmethod
    def cursor_reply(ns, docs):
        return {"ok": 1, "cursor": {"id": 0, "ns": ns, "firstBatch": docs}}

    # ------------------------------------------------------------------ cases

    def test_discovery_from_one_seed(self):
        # Seeded with a secondary only: the primary and the other secondary come from its hosts.
        self.connect(self.rs.addresses[1])
        # wait_for_discovery(): returns once the seed and every member it named were checked.
        t = self.driver.ok(op="discover")
        self.assertEqual(t["type"], "ReplicaSetWithPrimary", t)
        self.assertEqual({s["address"]: s["type"] for s in t["servers"]},
                         {self.rs.addresses[0]: "RSPrimary", self.rs.addresses[1]: "RSSecondary",
                          self.rs.addresses[2]: "RSSecondary"})
        # And the snapshot says the same.
        t = self.wait_for_topology(primary=0)
        self.assertEqual(t["type"], "ReplicaSetWithPrimary")
        self.assertEqual(t["set_name"], SET_NAME)
        self.assertEqual(t["primary"], self.rs.addresses[0])
        self.assertEqual(sorted(s["address"] for s in t["servers"]), sorted(self.rs.addresses))
        self.assertEqual(t["max_set_version"], 1)
        self.assertEqual(t["logical_session_timeout_minutes"], 30)
        # The two members that were not seeds were found and checked, each by its own monitor.
        for m in (0, 2):
            self.assertGreater(self.rs.hello_count(m), 0)
        # Monitoring polls (no topologyVersion): each member keeps being checked.
        counts = [self.rs.hello_count(m) for m in range(3)]
        wait_until(lambda: (all(self.rs.hello_count(m) > counts[m] for m in range(3)), None),
                   "another poll of every member", timeout=3.0)

    def test_reads_routed_by_read_preference(self):
        self.connect(self.rs.addresses[2])
        self.wait_for_topology(primary=0)
        ns = "app.items"

        # mode secondary with a tag set: only the east secondary suits; $readPreference says so.
        self.driver.send(op="find", ns=ns, filter={"x": 1},
                         read_preference={"mode": "secondary", "tag_sets": [{"dc": "east"}]})
        find = self.receives(2, "find")
        self.assertEqual(find["find"], "items")
        self.assertEqual(find["$db"], "app")
        self.assertEqual(find["filter"], {"x": 1})
        self.assertEqual(find["$readPreference"], {"mode": "secondary", "tags": [{"dc": "east"}]})
        find.replies(self.cursor_reply(ns, [{"_id": 1, "x": 1, "from": "east"}]))
        r = self.driver.result()
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["documents"], [{"_id": 1, "x": 1, "from": "east"}])
        self.assertEqual(r["result"]["address"], self.rs.addresses[2])

        # mode secondary, the other tag set first in the list that matches: the west secondary.
        self.driver.send(op="find", ns=ns, filter={},
                         read_preference={"mode": "secondary", "tag_sets": [{"dc": "mars"}, {"dc": "west"}]})
        find = self.receives(1, "find")
        self.assertEqual(find["$readPreference"],
                         {"mode": "secondary", "tags": [{"dc": "mars"}, {"dc": "west"}]})
        find.replies(self.cursor_reply(ns, []))
        self.assertEqual(self.driver.succeeded("find")["address"], self.rs.addresses[1])

        # mode primary: the primary, with no $readPreference other than primary (the default).
        self.driver.send(op="find", ns=ns, filter={"y": 2}, read_preference={"mode": "primary"})
        find = self.receives(0, "find")
        self.assertEqual(find.doc.get("$readPreference", {"mode": "primary"}), {"mode": "primary"})
        find.replies(self.cursor_reply(ns, [{"_id": 2, "y": 2}]))
        r = self.driver.succeeded("find")
        self.assertEqual(r["documents"], [{"_id": 2, "y": 2}])
        self.assertEqual(r["address"], self.rs.addresses[0])

        # A command with a read preference is a read: routed and labelled the same way.
        self.driver.send(op="run", db="app", command={"dbStats": 1},
                         read_preference={"mode": "secondaryPreferred", "tag_sets": [{"dc": "west"}]})
        cmd = self.receives(1, "dbStats")
        self.assertEqual(cmd["$readPreference"], {"mode": "secondaryPreferred", "tags": [{"dc": "west"}]})
        cmd.replies({"ok": 1, "db": "app", "member": "west"})
        self.assertEqual(self.driver.succeeded("run")["member"], "west")

        # A command without one goes to the primary.
        self.driver.send(op="run", db="admin", command={"ping": 1})
        cmd = self.receives(0, "ping")
        self.assertEqual(cmd.doc.get("$readPreference", {"mode": "primary"}), {"mode": "primary"})
        cmd.replies({"ok": 1})
        self.assertEqual(self.driver.succeeded("run")["ok"], 1)
        self.assert_nothing_queued(0, 1, 2)

    def test_not_writable_primary_write_retried_on_new_primary(self):
        self.connect(self.rs.addresses[1])
        self.wait_for_topology(primary=0)

        self.driver.send(op="insert", ns="app.items", doc={"_id": 7, "v": "x"})
        first = self.receives(0, "insert")
        self.assertEqual(first["insert"], "items")
        self.assertEqual(first["documents"], [{"_id": 7, "v": "x"}])
        self.assertIn("lsid", first.doc, "a retryable write carries a session id")
        self.assertIn("txnNumber", first.doc, "a retryable write carries a transaction number")

        # The set elects member 1 (a newer electionId, the same setVersion); the old primary,
        # now a secondary, refuses the write as a 4.4+ server does: with RetryableWriteError.
        self.rs.elect(1)
        first.replies({"ok": 0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary",
                       "errorLabels": ["RetryableWriteError"]})

        # Retried once, on the new primary, as the same write: same lsid, same txnNumber.
        second = self.receives(1, "insert")
        self.assertEqual(second["documents"], first["documents"])
        self.assertEqual(second["lsid"], first["lsid"])
        self.assertEqual(second["txnNumber"], first["txnNumber"])
        second.replies({"ok": 1, "n": 1})

        r = self.driver.result()
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["inserted_id"], 7)
        self.assertTrue(r["result"]["acknowledged"])
        self.assert_nothing_queued(0, 1, 2)
        self.wait_for_topology(primary=1)

        # The next write is a new one: the same session may be reused, but with a new txnNumber.
        self.driver.send(op="insert", ns="app.items", doc={"_id": 8})
        third = self.receives(1, "insert")
        if third["lsid"] == first["lsid"]:
            self.assertGreater(third["txnNumber"], first["txnNumber"])
        third.replies({"ok": 1, "n": 1})
        self.assertEqual(self.driver.succeeded("insert")["inserted_id"], 8)

    def test_not_writable_primary_without_label_is_not_retried(self):
        # From 4.4 on the server decides what is retryable: no RetryableWriteError label, no retry.
        self.connect(self.rs.addresses[0])
        self.wait_for_topology(primary=0)
        self.driver.send(op="insert", ns="app.items", doc={"_id": 9})
        first = self.receives(0, "insert")
        self.rs.elect(1)
        first.replies({"ok": 0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"})
        r = self.driver.result()
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["server_code"], 10107)
        self.assertEqual(r["code"], "not_primary")
        self.assertEqual(r["labels"], [])
        self.assertIn("not primary", r["error"])
        self.assert_nothing_queued(0, 1, 2)
        # The error still told SDAM: the client finds the new primary.
        self.wait_for_topology(primary=1)


if __name__ == "__main__":
    unittest.main()
