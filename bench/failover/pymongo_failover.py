#!/usr/bin/python3
"""The PyMongo half of `trellis-bench failover`: time from a stepdown to the first
successful write, measured with Debian's PyMongo 3.11 against a trellis-sim replica set.

    /usr/bin/python3 pymongo_failover.py URI CONTROL [--stepdowns N] [--no-reelect-secs S]
                                         [--w W] [--heartbeat-ms MS] [--timeout-s T]

URI is the replica set's mongodb:// URI, CONTROL the simulator's control address
(host:port; it speaks the wire protocol and takes simStatus, simStepDown, ...).

One thread does everything, in order, so that no write is in flight while the stepdown
is requested:

    loop: insert_one({_id: i})            # tiny documents, _id chosen here, counted
          when the set is stable:         # sim and PyMongo agree on the primary, every other
                                          # member is past its no-reelect period, and writes
                                          # have gone to that primary for --settle-ms
              t0 = clock(); simStepDown(primary, secs=S)
          first insert_one that returns after that: sample = clock() - t0

So a sample is "from the stepdown request to the first write acknowledged after it":
election delay + PyMongo noticing (streaming hello / a NotWritablePrimary reply) + its
retry on the new primary. The write that acknowledged it must have gone to another
member than the old primary (checked through command monitoring).

Output (stdout): one JSON line per stepdown, then one summary line
    {"median_ms": ..., "samples": [...], "lost": 0, ...}
Exit status: 0 success; 1 an acknowledged write is missing at the end, or a check failed;
2 usage; 3 pymongo cannot be imported; 4 the set did not settle or no write succeeded in time.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import pymongo
    from pymongo import monitoring
    from pymongo.errors import PyMongoError
    from pymongo.write_concern import WriteConcern
except ImportError as e:  # pragma: no cover - depends on the interpreter
    print("pymongo_failover: cannot import pymongo with %s: %s" % (sys.executable, e), file=sys.stderr)
    sys.exit(3)

EXIT_OK, EXIT_CHECK, EXIT_USAGE, EXIT_NO_PYMONGO, EXIT_TIMEOUT = 0, 1, 2, 3, 4

DB, COLLECTION = "bench", "failover_pymongo"


class Timeout(Exception):
    pass


class LastServer(monitoring.CommandListener):
    """Remembers which member answered the last successful insert command.

    PyMongo calls the listener on the thread that runs the operation, before
    insert_one returns, so after a successful insert_one `last_insert_server` is
    the member that acknowledged it (the retry's, when it was retried)."""

    def __init__(self):
        self.last_insert_server = None

    def started(self, event):
        pass

    def succeeded(self, event):
        if event.command_name == "insert":
            self.last_insert_server = "%s:%d" % event.connection_id

    def failed(self, event):
        pass


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")
    sys.stdout.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("uri", help="the replica set's mongodb:// URI")
    p.add_argument("control", help="trellis-sim's control address, host:port")
    p.add_argument("--stepdowns", type=int, default=5, help="stepdowns to measure (default 5)")
    p.add_argument("--heartbeat-ms", type=int, default=500,
                   help="heartbeatFrequencyMS (default 500, PyMongo's minimum)")
    p.add_argument("--no-reelect-secs", type=int, default=2,
                   help="a stepped-down member cannot be re-elected for this long (default 2)")
    p.add_argument("--w", default="majority", help='write concern w: "majority" (default) or a number')
    p.add_argument("--settle-ms", type=int, default=300,
                   help="writes must have gone to the current primary this long before a stepdown (default 300)")
    p.add_argument("--timeout-s", type=float, default=30.0,
                   help="per stepdown: the set must settle, and a write succeed, within this (default 30)")
    a = p.parse_args(argv)
    if a.stepdowns < 1:
        p.error("--stepdowns must be at least 1")
    if a.heartbeat_ms < 500:
        p.error("--heartbeat-ms must be at least 500 (PyMongo's minimum)")
    if a.no_reelect_secs < 1:
        p.error("--no-reelect-secs must be at least 1")
    a.w = int(a.w) if a.w.isdigit() else a.w
    return a


class Bench:
    def __init__(self, args):
        self.args = args
        self.listener = LastServer()
        self.client = pymongo.MongoClient(
            args.uri, heartbeatFrequencyMS=args.heartbeat_ms, retryWrites=True,
            serverSelectionTimeoutMS=int(args.timeout_s * 1000), event_listeners=[self.listener])
        self.control = pymongo.MongoClient(args.control, directConnection=True, serverSelectionTimeoutMS=5000)
        self.coll = self.client[DB].get_collection(
            COLLECTION, write_concern=WriteConcern(w=args.w, wtimeout=int(args.timeout_s * 1000)))
        self.next_id = 0
        self.acked = []            # _ids whose insert_one returned
        self.failed = 0            # insert_one calls that raised
        self.stepped_down_at = {}  # host:port -> monotonic time of its last stepdown

    def close(self):
        self.client.close()
        self.control.close()

    # --------------------------------------------------------------- the sim

    def sim_primary(self):
        return self.control.admin.command("simStatus").get("primary")

    def step_down(self, host):
        self.control.admin.command("simStepDown", host, secs=self.args.no_reelect_secs)

    # --------------------------------------------------------------- writes

    def write(self, errors=None):
        """One insert_one of a tiny document; returns True when acknowledged."""
        _id = self.next_id
        self.next_id += 1
        try:
            self.coll.insert_one({"_id": _id, "x": 1})
        except PyMongoError as e:
            self.failed += 1
            if errors is not None:
                name = type(e).__name__
                errors[name] = errors.get(name, 0) + 1
            return False
        self.acked.append(_id)
        return True

    def pymongo_primary(self):
        p = self.client.primary
        return None if p is None else "%s:%d" % p

    def wait_stable(self):
        """Writes on until the set is stable; returns the primary.

        Stable: the simulator has a primary, PyMongo's topology names the same one,
        every other member is past its no-reelect period (so each stepdown leaves the
        same choice of electable members), and writes have been acknowledged for
        --settle-ms since all that became true."""
        deadline = time.monotonic() + self.args.timeout_s
        stable_since, stable_primary, next_check = None, None, 0.0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise Timeout("the replica set did not settle within %.0f s (sim primary %s, PyMongo primary %s)"
                              % (self.args.timeout_s, self.sim_primary(), self.pymongo_primary()))
            if now >= next_check:
                next_check = now + 0.05
                primary = self.sim_primary()
                ok = primary is not None and primary == self.pymongo_primary() and all(
                    now >= t + self.args.no_reelect_secs + 0.1
                    for h, t in self.stepped_down_at.items() if h != primary)
                if not ok or primary != stable_primary:
                    stable_since, stable_primary = (now, primary) if ok else (None, None)
                elif now - stable_since >= self.args.settle_ms / 1000.0 and self.listener.last_insert_server == primary:
                    return primary
            self.write()

    def measure_one(self, index):
        old = self.wait_stable()
        errors = {}
        failed_before = self.failed
        deadline = time.monotonic() + self.args.timeout_s
        t0 = time.perf_counter()
        self.step_down(old)
        stepdown_returned_ms = (time.perf_counter() - t0) * 1000.0
        self.stepped_down_at[old] = time.monotonic()
        while not self.write(errors):
            if time.monotonic() > deadline:
                raise Timeout("no write succeeded within %.0f s of stepping down %s" % (self.args.timeout_s, old))
        ms = (time.perf_counter() - t0) * 1000.0
        new = self.listener.last_insert_server
        line = {"stepdown": index, "ms": round(ms, 3), "old_primary": old, "acknowledged_by": new,
                "stepdown_call_ms": round(stepdown_returned_ms, 3), "failed_writes": self.failed - failed_before,
                "errors": errors}
        emit(line)
        if new == old:
            raise AssertionError("the first write after stepping down %s was acknowledged by %s itself" % (old, old))
        return ms

    def final_check(self):
        """Every acknowledged _id must be on the primary at the end."""
        self.wait_stable()
        on_primary = self.client[DB].get_collection(COLLECTION, read_preference=pymongo.ReadPreference.PRIMARY)
        present = set(d["_id"] for d in on_primary.find({}, {"_id": 1}))
        counted = on_primary.count_documents({})
        acked = set(self.acked)
        return {
            "lost": len(acked - present),
            "acknowledged": len(acked),
            "counted": counted,
            # insert_one raised, yet the document is there (a write applied whose reply was lost):
            # allowed, reported so that counted == acknowledged + this.
            "unacknowledged_applied": len(present - acked),
            "failed_writes": self.failed,
        }


def main(argv):
    args = parse_args(argv)
    bench = Bench(args)
    try:
        bench.client[DB].drop_collection(COLLECTION)
        samples = [bench.measure_one(i + 1) for i in range(args.stepdowns)]
        check = bench.final_check()
    except Timeout as e:
        print("pymongo_failover: %s" % e, file=sys.stderr)
        return EXIT_TIMEOUT
    except (AssertionError, PyMongoError) as e:
        print("pymongo_failover: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return EXIT_CHECK
    finally:
        bench.close()
    summary = {"median_ms": round(statistics.median(samples), 3), "samples": [round(s, 3) for s in samples]}
    summary.update(check)
    summary.update({"stepdowns": args.stepdowns, "heartbeat_ms": args.heartbeat_ms,
                    "no_reelect_secs": args.no_reelect_secs, "w": args.w, "pymongo": pymongo.version})
    emit(summary)
    if check["lost"] != 0:
        print("pymongo_failover: %d acknowledged writes are missing at the end" % check["lost"], file=sys.stderr)
        return EXIT_CHECK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
