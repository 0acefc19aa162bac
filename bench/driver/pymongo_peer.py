"""trellis-bench driver, the PyMongo peer: reads requests on stdin, one per line,
"TASK CHECK" (TASK: run_command, find_one, insert_one; CHECK: 0 or 1), runs the task
on one MongoClient and answers "ok SECONDS DIGEST DOCUMENTS" or "error TEXT".

argv: URI DB FIND_COLL INSERT_COLL OPS TWEETS SMALL_DOC_JSON
"""
import json
import sys
import time

import pymongo
from bson.raw_bson import RawBSONDocument

MASK = (1 << 64) - 1


def fnv1a(data):
    h = 14695981039346656037
    for b in data:
        h ^= b
        h = (h * 1099511628211) & MASK
    return h


def main():
    uri, db_name, find_coll, insert_coll, ops, tweets, small_path = sys.argv[1:8]
    ops, tweets = int(ops), int(tweets)
    with open(small_path) as f:
        small = json.load(f)
    client = pymongo.MongoClient(uri)
    raw_client = pymongo.MongoClient(uri, document_class=RawBSONDocument)
    print("ready", flush=True)
    for line in sys.stdin:
        task, check = line.split()
        check = check == "1"
        c = raw_client if check else client
        db = c[db_name]
        digest, documents = 0, 0
        try:
            start = time.perf_counter()
            if task == "run_command":
                for _ in range(ops):
                    reply = db.command("hello")
                    if check and reply["ok"] == 1.0:
                        documents += 1
            elif task == "find_one":
                coll = db[find_coll]
                for i in range(ops):
                    doc = coll.find_one({"_id": i % tweets})
                    if check and doc is not None:
                        digest = (digest + fnv1a(doc.raw)) & MASK
                        documents += 1
            elif task == "insert_one":
                coll = db[insert_coll]
                for _ in range(ops):
                    coll.insert_one(dict(small))  # a copy: insert_one adds _id to its argument
            else:
                raise ValueError("unknown task " + task)
            seconds = time.perf_counter() - start
            print("ok %.9f %d %d" % (seconds, digest, documents), flush=True)
        except Exception as e:  # reported to trellis-bench, which stops with it
            print("error %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), flush=True)


if __name__ == "__main__":
    main()
