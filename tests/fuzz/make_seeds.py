#!/usr/bin/env python3
"""Builds seed corpora for the fuzz targets from the specification tests, at run time.

    make_seeds.py SPEC_DIR OUT_DIR

Writes OUT_DIR/<target>/<name>.bin for the targets the specs have inputs for (bson, json, uri,
hello). Spec data is never copied into the repository: this runs against ../shared/specs (or
TRELLIS_SPEC_DIR) into the build tree. Without SPEC_DIR it says so and writes nothing (the
committed seeds in tests/fuzz/seeds still run).
Needs only the standard library, plus Debian's pymongo (bson) for the hello replies, which are
skipped without it.
"""
import glob
import hashlib
import json
import os
import sys


def write(out, target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16] + ".bin"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def bson_corpus(spec, out):
    n = 0
    for path in sorted(glob.glob(os.path.join(spec, "bson-corpus", "*.json")) + glob.glob(os.path.join(spec, "bson-corpus", "tests", "*.json"))):
        with open(path, encoding="utf-8") as f:
            t = json.load(f)
        for case in t.get("valid", []):
            for key in ("canonical_bson", "degenerate_bson"):
                if key in case:
                    write(out, "bson", bytes.fromhex(case[key]))
                    n += 1
            for key in ("canonical_extjson", "relaxed_extjson", "degenerate_extjson"):
                if key in case:
                    write(out, "json", b"\x00" + case[key].encode("utf-8"))
                    n += 1
        for case in t.get("decodeErrors", []):
            write(out, "bson", bytes.fromhex(case["bson"]))
            n += 1
        if t.get("bson_type") != "0x13":
            for case in t.get("parseErrors", []):
                write(out, "json", b"\x00" + case["string"].encode("utf-8"))
                n += 1
    return n


def uris(spec, out):
    n = 0
    files = glob.glob(os.path.join(spec, "connection-string", "*.json")) + \
        glob.glob(os.path.join(spec, "uri-options", "*.json")) + glob.glob(os.path.join(spec, "auth", "*.json"))
    for path in sorted(files):
        with open(path, encoding="utf-8") as f:
            t = json.load(f)
        for case in t.get("tests", []):
            if isinstance(case.get("uri"), str):
                write(out, "uri", case["uri"].encode("utf-8"))
                n += 1
    return n


def hellos(spec, out):
    try:
        import bson
        from bson import json_util
    except ImportError:
        print("make_seeds: no pymongo (bson): hello seeds skipped", file=sys.stderr)
        return 0
    n = 0
    for path in sorted(glob.glob(os.path.join(spec, "sdam", "**", "*.json"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            t = json_util.loads(text)
        except Exception:
            continue
        for phase in t.get("phases", []):
            for response in phase.get("responses", []):
                if len(response) == 2 and isinstance(response[1], dict):
                    for topology in (0, 1, 2, 3, 4):
                        write(out, "hello", bytes([topology]) + bson.encode(response[1]))
                        n += 1
    return n


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec, out = sys.argv[1], sys.argv[2]
    if not os.path.isdir(spec):
        print("make_seeds: spec data not found at " + spec + ": only the committed seeds will run")
        return 0
    for target in ("bson", "json", "uri", "toml", "frame", "hello", "scram", "sim"):
        os.makedirs(os.path.join(out, target), exist_ok=True)  # the specs have nothing for some
    counts = {"bson/json": bson_corpus(spec, out), "uri": uris(spec, out), "hello": hellos(spec, out)}
    print("make_seeds: " + ", ".join("%s %d" % kv for kv in counts.items()) + " seeds in " + out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
