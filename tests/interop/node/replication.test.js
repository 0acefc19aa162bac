// The Node.js driver's sessions, retryable writes through a stepdown and a retryable
// error, and secondary reads chosen by read preference and tags, against a simulated
// replica set.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { MongoClient, ReadPreference } = require('mongodb');
const { startSim, sleep } = require('./sim');

const TAGGED = `
topology = "replset"
nodes = 3
election_delay_ms = 100
[[members]]
priority = 2
tags = { dc = "east" }
[[members]]
tags = { dc = "west", use = "reports" }
[[members]]
tags = { dc = "east" }
`;

test('sessions: lsid on every command, causal consistency, endSessions at close', async () => {
  // Secondaries 300 ms behind: a causally consistent read there must still see the write.
  const sim = await startSim(['--topology', 'replset', '--nodes', '3', '--lag-ms', '300']);
  const client = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 5000, monitorCommands: true });
  const started = [];
  client.on('commandStarted', (e) => started.push(e));
  try {
    const session = client.startSession({ causalConsistency: true });
    const c = client.db('sess').collection('c');
    await c.insertOne({ a: 1 }, { session });
    assert.ok(session.operationTime, 'the reply carried an operationTime');
    assert.ok(session.clusterTime && session.clusterTime.clusterTime, 'the reply carried a $clusterTime');
    const doc = await c.findOne({ a: 1 }, { session, readPreference: 'secondary' });
    assert.ok(doc, 'the secondary waited for afterClusterTime');
    assert.equal(doc.a, 1);
    const ids = started.filter((e) => e.commandName === 'insert' || e.commandName === 'find').map((e) => e.command.lsid.id.toString('hex'));
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1], 'both commands used the explicit session');
    const find = started.find((e) => e.commandName === 'find');
    assert.ok(find.command.readConcern && find.command.readConcern.afterClusterTime, 'causally consistent read');
    await session.endSession();
    // Without the session's cluster time, the lagging secondary answers at once, without the write.
    await c.insertOne({ b: 1 });
    assert.equal(await c.findOne({ b: 1 }, { readPreference: 'secondary' }), null);
  } finally {
    await client.close();
    assert.ok(started.some((e) => e.commandName === 'endSessions'), 'endSessions sent at close');
    await sim.stop();
  }
});

test('retryable writes: a retryable error and a stepdown, each write applied once', async () => {
  const sim = await startSim(['--topology', 'replset', '--nodes', '3', '--election-delay-ms', '100']);
  const client = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 10000, heartbeatFrequencyMS: 500, monitorCommands: true });
  const started = [];
  client.on('commandStarted', (e) => started.push(e));
  try {
    const c = client.db('retry').collection('c');
    await c.insertOne({ _id: 0 });
    // The primary fails the next insert with a retryable error (label added by the server).
    await client.db('admin').command({
      configureFailPoint: 'failCommand', mode: { times: 1 }, data: { failCommands: ['insert'], errorCode: 189 },
    });
    started.length = 0;
    await c.insertOne({ _id: 1 });
    const inserts = started.filter((e) => e.commandName === 'insert');
    assert.equal(inserts.length, 2, 'the driver retried once');
    assert.equal(String(inserts[0].command.txnNumber), String(inserts[1].command.txnNumber));

    // A stepdown between writes: the next write finds the new primary (a retry if needed).
    const old = await sim.primary();
    await sim.ctl({ simStepDown: old, secs: 30 });
    await c.insertOne({ _id: 2 });
    await c.updateOne({ _id: 2 }, { $inc: { n: 1 } });
    const now = await sim.primary();
    assert.notEqual(now, old);
    assert.equal((await c.findOne({ _id: 2 })).n, 1, 'the update was applied exactly once');
    assert.equal(await c.countDocuments(), 3);

    // A stepdown while an insert is in flight (held 800 ms on the primary): the old primary
    // answers NotWritablePrimary with RetryableWriteError and the driver retries on the new one.
    const failed = [];
    client.on('commandFailed', (e) => failed.push(e));
    const held = await sim.primary();
    await client.db('admin').command({
      configureFailPoint: 'failCommand', mode: { times: 1 },
      data: { failCommands: ['insert'], blockConnection: true, blockTimeMS: 800 },
    });
    started.length = 0;
    const inFlight = c.insertOne({ _id: 3 });
    await sleep(200);
    await sim.ctl({ simStepDown: held, secs: 30 });
    await inFlight;
    const tries = started.filter((e) => e.commandName === 'insert');
    assert.equal(tries.length, 2, 'one retry');
    assert.equal(tries[0].address, held);
    assert.notEqual(tries[1].address, held);
    assert.equal(String(tries[0].command.txnNumber), String(tries[1].command.txnNumber));
    const refusal = failed.find((e) => e.commandName === 'insert');
    assert.equal(refusal.failure.code, 10107);
    assert.ok(refusal.failure.errorLabels.includes('RetryableWriteError'), JSON.stringify(refusal.failure.errorLabels));
    assert.equal(await c.countDocuments({ _id: 3 }), 1);

    // The same txnNumber sent twice (as a retry is) is answered from the record, not applied again.
    const session = client.startSession();
    const lsid = session.id;
    const cmd = { update: 'c', updates: [{ q: { _id: 2 }, u: { $inc: { n: 1 } } }], lsid, txnNumber: 7 };
    const first = await client.db('retry').command(cmd);
    const again = await client.db('retry').command(cmd);
    assert.deepEqual([first.n, first.nModified], [1, 1]);
    assert.deepEqual([again.n, again.nModified], [1, 1]);
    assert.equal((await c.findOne({ _id: 2 })).n, 2);
    await session.endSession();
  } finally {
    await client.close();
    await sim.stop();
  }
});

test('secondary reads follow the read preference and its tags', async () => {
  const sim = await startSim([], { config: TAGGED });
  const client = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 5000, monitorCommands: true, localThresholdMS: 1000 });
  const finds = [];
  client.on('commandStarted', (e) => { if (e.commandName === 'find') finds.push(e.address); });
  try {
    const [east1, west, east2] = sim.members;
    assert.equal(await sim.primary(), east1, 'priority 2 member is primary');
    const db = client.db('reads');
    await db.collection('c').insertOne({ x: 1 }, { writeConcern: { w: 3 } });

    finds.length = 0;
    for (let i = 0; i < 6; i++) {
      const d = await db.collection('c').findOne({}, { readPreference: new ReadPreference('secondary', [{ use: 'reports' }]) });
      assert.equal(d.x, 1);
    }
    assert.deepEqual([...new Set(finds)], [west]);

    finds.length = 0;
    for (let i = 0; i < 6; i++) await db.collection('c').findOne({}, { readPreference: new ReadPreference('secondary', [{ dc: 'east' }]) });
    assert.deepEqual([...new Set(finds)], [east2]);

    finds.length = 0;
    for (let i = 0; i < 10; i++) await db.collection('c').findOne({}, { readPreference: 'secondary' });
    assert.ok(finds.every((a) => a === west || a === east2), finds.join());

    finds.length = 0;
    await db.collection('c').findOne({}, { readPreference: 'primary' });
    assert.deepEqual(finds, [east1]);

    // No member matches: server selection fails rather than reading elsewhere.
    const quick = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 500 });
    try {
      const none = await quick.db('reads').collection('c')
        .findOne({}, { readPreference: new ReadPreference('secondary', [{ dc: 'mars' }]) })
        .catch((e) => e);
      assert.equal(none.name, 'MongoServerSelectionError');
    } finally {
      await quick.close();
    }

    // A direct connection to a secondary reads from it (the driver sends primaryPreferred).
    const direct = new MongoClient(`mongodb://${west}/?directConnection=true`, { serverSelectionTimeoutMS: 3000 });
    try {
      assert.equal((await direct.db('reads').collection('c').findOne({})).x, 1);
      const refused = await direct.db('reads').collection('c').insertOne({ y: 1 }).catch((e) => e);
      assert.equal(refused.code, 10107);
      assert.equal(refused.codeName, 'NotWritablePrimary');
    } finally {
      await direct.close();
    }
  } finally {
    await client.close();
    await sleep(0);
    await sim.stop();
  }
});
