// CRUD through the Node.js driver's collection API against a simulated replica set:
// every result is checked against what mongod answers.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { MongoClient, MongoBulkWriteError, MongoServerError } = require('mongodb');
const { startSim } = require('./sim');

let sim;
let client;
const commands = [];

test.before(async () => {
  sim = await startSim(['--topology', 'replset', '--nodes', '3']);
  client = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 5000, monitorCommands: true });
  client.on('commandStarted', (e) => commands.push(e));
  await client.connect();
});

test.after(async () => {
  await client.close();
  await sim.stop();
});

test('insertMany, then find with batchSize walks the cursor with getMore', async () => {
  const c = client.db('crud').collection('many');
  const r = await c.insertMany(Array.from({ length: 250 }, (_, i) => ({ i, even: i % 2 === 0 })));
  assert.equal(r.insertedCount, 250);
  assert.equal(Object.keys(r.insertedIds).length, 250);
  commands.length = 0;
  const docs = await c.find({ even: true }, { batchSize: 20, sort: { i: -1 }, projection: { _id: 0, i: 1 } }).toArray();
  assert.equal(docs.length, 125);
  assert.deepEqual(docs.slice(0, 3), [{ i: 248 }, { i: 246 }, { i: 244 }]);
  const names = commands.map((e) => e.commandName);
  assert.equal(names.filter((n) => n === 'find').length, 1);
  assert.equal(names.filter((n) => n === 'getMore').length, 6); // 20 + 6 * 20 >= 125
  // skip/limit
  const page = await c.find({}, { sort: { i: 1 }, skip: 10, limit: 5 }).toArray();
  assert.deepEqual(page.map((d) => d.i), [10, 11, 12, 13, 14]);
});

test('updateMany, upsert, replaceOne, findOneAndUpdate', async () => {
  const c = client.db('crud').collection('upd');
  await c.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }, { _id: 3, n: 3 }]);
  const many = await c.updateMany({ n: { $gte: 2 } }, { $inc: { n: 10 }, $set: { big: true } });
  assert.equal(many.matchedCount, 2);
  assert.equal(many.modifiedCount, 2);
  const up = await c.updateOne({ _id: 9 }, { $set: { n: 9 } }, { upsert: true });
  assert.equal(up.upsertedCount, 1);
  assert.equal(up.upsertedId, 9);
  const same = await c.updateOne({ _id: 1 }, { $set: { n: 1 } });
  assert.equal(same.matchedCount, 1);
  assert.equal(same.modifiedCount, 0);
  const rep = await c.replaceOne({ _id: 1 }, { replaced: true });
  assert.equal(rep.modifiedCount, 1);
  assert.deepEqual(await c.findOne({ _id: 1 }), { _id: 1, replaced: true });
  const before = await c.findOneAndUpdate({ _id: 2 }, { $inc: { n: 1 } }, { returnDocument: 'before' });
  assert.equal(before.n, 12);
  const after = await c.findOneAndUpdate({ _id: 2 }, { $inc: { n: 1 } }, { returnDocument: 'after', projection: { n: 1 } });
  assert.deepEqual(after, { _id: 2, n: 14 });
  const upserted = await c.findOneAndUpdate({ _id: 20 }, { $set: { n: 20 } }, { upsert: true, returnDocument: 'after' });
  assert.deepEqual(upserted, { _id: 20, n: 20 });
  const removed = await c.findOneAndDelete({ _id: 20 });
  assert.equal(removed._id, 20);
  assert.equal(await c.findOneAndDelete({ _id: 20 }), null);
  const del = await c.deleteMany({ big: true });
  assert.equal(del.deletedCount, 2);
});

test('aggregate, distinct, countDocuments, estimatedDocumentCount', async () => {
  const c = client.db('crud').collection('agg');
  await c.insertMany([
    { k: 'a', v: 1, tags: ['x', 'y'] }, { k: 'a', v: 2, tags: ['y'] }, { k: 'b', v: 5, tags: [] }, { k: 'c', v: 7 },
  ]);
  const groups = await c.aggregate([
    { $match: { v: { $lt: 7 } } },
    { $group: { _id: '$k', total: { $sum: '$v' }, n: { $sum: 1 } } },
    { $sort: { _id: 1 } },
  ]).toArray();
  assert.deepEqual(groups, [{ _id: 'a', total: 3, n: 2 }, { _id: 'b', total: 5, n: 1 }]);
  const batched = await c.aggregate([{ $sort: { v: 1 } }, { $project: { _id: 0, v: 1 } }], { batchSize: 1 }).toArray();
  assert.deepEqual(batched.map((d) => d.v), [1, 2, 5, 7]);
  assert.deepEqual((await c.distinct('k')).sort(), ['a', 'b', 'c']);
  assert.deepEqual((await c.distinct('tags', { k: 'a' })).sort(), ['x', 'y']);
  assert.equal(await c.countDocuments({ k: 'a' }), 2);
  assert.equal(await c.countDocuments({}, { skip: 1, limit: 2 }), 2);
  assert.equal(await c.estimatedDocumentCount(), 4);
});

test('bulkWrite ordered stops at the first error, unordered goes on', async () => {
  const c = client.db('crud').collection('bulk');
  await c.insertOne({ _id: 1 });
  const ops = [
    { insertOne: { document: { _id: 2 } } },
    { insertOne: { document: { _id: 1 } } }, // duplicate
    { updateOne: { filter: { _id: 2 }, update: { $set: { x: 1 } } } },
    { deleteOne: { filter: { _id: 1 } } },
  ];
  let err = await c.bulkWrite(ops, { ordered: true }).catch((e) => e);
  assert.ok(err instanceof MongoBulkWriteError, String(err));
  assert.equal(err.writeErrors.length, 1);
  assert.equal(err.writeErrors[0].index, 1);
  assert.equal(err.writeErrors[0].code, 11000);
  assert.equal(err.result.insertedCount, 1);
  assert.equal(err.result.modifiedCount, 0);
  assert.equal(await c.countDocuments(), 2);

  await c.deleteMany({});
  await c.insertOne({ _id: 1 });
  err = await c.bulkWrite([{ insertOne: { document: { _id: 1 } } }, ...ops], { ordered: false }).catch((e) => e);
  assert.ok(err instanceof MongoBulkWriteError, String(err));
  assert.deepEqual(err.writeErrors.map((w) => w.index).sort(), [0, 2]);
  assert.equal(err.result.insertedCount, 1);
  assert.equal(err.result.modifiedCount, 1);
  assert.equal(err.result.deletedCount, 1);
  assert.deepEqual(await c.find().toArray(), [{ _id: 2, x: 1 }]);

  const ok = await c.bulkWrite([
    { insertOne: { document: { _id: 3 } } },
    { updateMany: { filter: {}, update: { $set: { y: 1 } } } },
    { replaceOne: { filter: { _id: 3 }, replacement: { z: 1 } } },
    { deleteMany: { filter: { _id: 2 } } },
    { updateOne: { filter: { _id: 4 }, update: { $set: { y: 4 } }, upsert: true } },
  ]);
  assert.equal(ok.insertedCount, 1);
  assert.equal(ok.matchedCount, 3);
  assert.equal(ok.modifiedCount, 3);
  assert.equal(ok.deletedCount, 1);
  assert.equal(ok.upsertedCount, 1);
});

test('createIndex unique, E11000, listIndexes, listCollections, listDatabases, rename, drop', async () => {
  const db = client.db('crudidx');
  const c = db.collection('people');
  assert.equal(await c.createIndex({ email: 1 }, { unique: true }), 'email_1');
  assert.equal(await c.createIndex({ last: 1, first: -1 }, { name: 'names' }), 'names');
  await c.insertOne({ email: 'a@x' });
  const dup = await c.insertOne({ email: 'a@x' }).catch((e) => e);
  assert.ok(dup instanceof MongoServerError, String(dup));
  assert.equal(dup.code, 11000);
  assert.match(dup.message, /E11000 duplicate key error collection: crudidx.people index: email_1 dup key/);
  assert.deepEqual(dup.keyValue, { email: 'a@x' });
  const indexes = await c.listIndexes().toArray();
  assert.deepEqual(indexes.map((i) => i.name), ['_id_', 'email_1', 'names']);
  assert.equal(indexes[1].unique, true);
  assert.deepEqual(indexes[2].key, { last: 1, first: -1 });
  assert.equal(await c.indexExists('names'), true);

  await db.createCollection('other');
  const colls = await db.listCollections({}, { nameOnly: true }).toArray();
  assert.deepEqual(colls.map((x) => x.name).sort(), ['other', 'people']);
  const dbs = await client.db('admin').admin().listDatabases();
  assert.ok(dbs.databases.some((d) => d.name === 'crudidx'));
  assert.ok(dbs.totalSize > 0);

  const renamed = await c.rename('humans');
  assert.equal(renamed.collectionName, 'humans');
  assert.equal(await db.collection('humans').countDocuments(), 1);
  assert.deepEqual((await db.collection('humans').listIndexes().toArray()).map((i) => i.name), ['_id_', 'email_1', 'names']);
  const clash = await db.collection('humans').rename('other').catch((e) => e);
  assert.equal(clash.code, 48);
  assert.equal(clash.codeName, 'NamespaceExists');
  const missing = await db.collection('nothing').rename('x').catch((e) => e);
  assert.equal(missing.code, 26);
  await db.collection('humans').rename('other', { dropTarget: true });
  assert.deepEqual((await db.listCollections().toArray()).map((x) => x.name), ['other']);

  assert.equal(await db.collection('other').drop(), true);
  assert.equal(await db.dropDatabase(), true);
  assert.ok(!(await client.db('admin').admin().listDatabases()).databases.some((d) => d.name === 'crudidx'));
});

test('unknown commands are refused as mongod refuses them', async () => {
  const e = await client.db('admin').command({ frobnicate: 1 }).catch((x) => x);
  assert.equal(e.code, 59);
  assert.equal(e.codeName, 'CommandNotFound');
  assert.equal(e.errmsg, "no such command: 'frobnicate'");
});
