"""Starts trellis-sim for a test and talks to its control port.

The simulator binary comes from $TRELLIS_SIM (set by CTest). Every port is
chosen by the OS; the process is stopped when the test ends, and a watchdog
kills it if the test process dies first.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import pymongo

SIM = os.environ.get("TRELLIS_SIM", "")


class Sim:
    def __init__(self, *args, config=None, timeout=10.0):
        if not SIM or not os.path.exists(SIM):
            raise unittest.SkipTest("TRELLIS_SIM is not set to the trellis-sim binary")
        self._control_client = None
        self._stopped = False
        self.dir = tempfile.TemporaryDirectory(prefix="trellis-sim-")
        ready = os.path.join(self.dir.name, "ready.json")
        argv = [SIM, "--port", "0", "--ready-file", ready] + [str(a) for a in args]
        if config is not None:
            path = os.path.join(self.dir.name, "sim.toml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config", path]
        self.log = open(os.path.join(self.dir.name, "sim.log"), "w+")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("trellis-sim exited with %s: %s" % (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("trellis-sim was not ready within %.0f s" % timeout)
            time.sleep(0.01)
        self.ready_after = time.monotonic() - self.started
        with open(ready) as f:
            info = json.load(f)
        self.uri = info["uri"]
        self.control = info["control"]
        self.members = info["members"]
        self.ready_line = self.proc.stdout.readline().strip()

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def ctl(self, command, value=1, **extra):
        if self._control_client is None:
            self._control_client = pymongo.MongoClient(self.control, directConnection=True,
                                                       serverSelectionTimeoutMS=5000)
        return self._control_client.admin.command(command, value, **extra)

    def status(self):
        return self.ctl("simStatus")

    def role(self, host):
        for m in self.status()["members"]:
            if m["host"] == host:
                return m["role"]
        return None

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def primary(self):
        return self.status().get("primary")

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        if self._control_client is not None:
            self._control_client.close()
            self._control_client = None
        hung = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.kill()
                self.proc.wait()
        log = self.stderr()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        self.dir.cleanup()
        # A clean stop is part of every test: a sanitizer report or a crash in the
        # simulator shows up only in its exit status and its log.
        if hung:
            raise AssertionError("trellis-sim did not stop within 10 s of SIGTERM:\n" + log[-4000:])
        if self.proc.returncode != 0:
            raise AssertionError("trellis-sim exited with status %d:\n%s" % (self.proc.returncode, log[-4000:]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class CommandLog(pymongo.monitoring.CommandListener):
    """Records command started/succeeded/failed events."""

    def __init__(self):
        self.started_events = []
        self.succeeded_events = []
        self.failed_events = []

    def started(self, event):
        self.started_events.append(event)

    def succeeded(self, event):
        self.succeeded_events.append(event)

    def failed(self, event):
        self.failed_events.append(event)

    def names(self):
        return [e.command_name for e in self.started_events]

    def clear(self):
        self.started_events.clear()
        self.succeeded_events.clear()
        self.failed_events.clear()
