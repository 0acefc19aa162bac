// The Stable API through the Node.js driver (serverApi) against trellis-sim: the driver's
// handshake and commands carry apiVersion/apiStrict as a real server expects them, and the
// simulator answers as mongod does (APIStrictError for a command outside API Version 1).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { MongoClient, MongoServerError } = require('mongodb');
const { startSim } = require('./sim');

let sim;
let client;
const started = [];

test.before(async () => {
  sim = await startSim([]);
  client = new MongoClient(sim.uri, {
    serverSelectionTimeoutMS: 5000,
    monitorCommands: true,
    serverApi: { version: '1', strict: true, deprecationErrors: true },
  });
  client.on('commandStarted', (e) => started.push(e));
  await client.connect();
});

test.after(async () => {
  await client.close();
  await sim.stop();
});

test('commands in API Version 1 run, with the API fields the driver sends', async () => {
  const c = client.db('api').collection('v1');
  await c.insertMany([{ i: 1 }, { i: 2 }, { i: 3 }]);
  const docs = await c.find({}, { batchSize: 1, sort: { i: 1 } }).toArray();
  assert.deepEqual(docs.map((d) => d.i), [1, 2, 3]);
  assert.equal(await c.countDocuments({}), 3);
  const getMore = started.find((e) => e.commandName === 'getMore');
  assert.ok(getMore, 'a getMore was sent');
  for (const e of started.filter((x) => ['insert', 'find', 'getMore', 'aggregate'].includes(x.commandName))) {
    assert.equal(e.command.apiVersion, '1', e.commandName);
    assert.equal(e.command.apiStrict, true, e.commandName);
    assert.equal(e.command.apiDeprecationErrors, true, e.commandName);
  }
});

test('a command outside API Version 1 is refused under apiStrict', async () => {
  await assert.rejects(client.db('api').command({ distinct: 'v1', key: 'i' }), (err) => {
    assert.ok(err instanceof MongoServerError);
    assert.equal(err.code, 323);
    assert.equal(err.codeName, 'APIStrictError');
    return true;
  });
});
