// The Node.js driver in load-balanced mode through trellis-sim's load balancer (sharded, two
// routers): the handshake's serviceId, cursors pinned to one connection (the sim keeps a cursor
// on the router that opened it), and a client without loadBalanced refused.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { MongoClient } = require('mongodb');
const { startSim } = require('./sim');

let sim;

test.before(async () => {
  sim = await startSim(['--topology', 'sharded', '--mongos', '2', '--load-balancer']);
});

test.after(async () => {
  await sim.stop();
});

test('the URI names the load balancer with loadBalanced=true', () => {
  assert.match(sim.uri, /^mongodb:\/\/127\.0\.0\.1:\d+\/\?loadBalanced=true$/);
});

test('CRUD with a cursor over several batches, its getMores on the connection of its find', async () => {
  const client = new MongoClient(sim.uri, { serverSelectionTimeoutMS: 5000, monitorCommands: true, maxPoolSize: 4 });
  const started = [];
  const heartbeats = [];
  client.on('commandStarted', (e) => started.push(e));
  client.on('serverHeartbeatStarted', (e) => heartbeats.push(e));
  try {
    const c = client.db('lb').collection('node');
    await c.deleteMany({});
    await c.insertMany(Array.from({ length: 30 }, (_, i) => ({ i })));
    const before = await sim.ctl({ simStatus: 1 });
    // Two cursors at once: two connections, which round robin sends to the two routers.
    const a = c.find({}, { batchSize: 5, sort: { i: 1 } });
    const b = c.find({}, { batchSize: 5, sort: { i: 1 } });
    assert.equal((await a.next()).i, 0);
    assert.equal((await b.next()).i, 0);
    const [docsA, docsB] = await Promise.all([a.toArray(), b.toArray()]);
    assert.equal(docsA.length, 29);
    assert.equal(docsB.length, 29);
    const finds = started.filter((e) => e.commandName === 'find');
    const getMores = started.filter((e) => e.commandName === 'getMore');
    assert.equal(finds.length, 2);
    assert.equal(getMores.length, 10);
    for (const f of finds) assert.ok(f.serviceId, 'serviceId on CommandStarted');
    assert.notEqual(finds[0].serviceId.toHexString(), finds[1].serviceId.toHexString());
    for (const g of getMores) {
      const f = finds.find((x) => x.connectionId === g.connectionId);
      assert.ok(f, 'each getMore on the connection of a find');
      assert.equal(g.serviceId.toHexString(), f.serviceId.toHexString());
    }
    // The sim: each router served the getMores of its own cursor.
    const after = await sim.ctl({ simStatus: 1 });
    const routers = after.members.filter((m) => m.role === 'mongos');
    assert.equal(routers.length, 2);
    for (const r of routers) {
      const was = before.members.find((m) => m.host === r.host);
      assert.equal(r.opcounters.getmore - was.opcounters.getmore, 5, `getMores on ${r.host}`);
      assert.ok(r.lbConnections >= 1);
    }
    assert.equal(heartbeats.length, 0, 'no monitoring in load-balanced mode');
  } finally {
    await client.close();
  }
});

test('a client without loadBalanced is refused through the load balancer', async () => {
  const lb = sim.uri.split('/?')[0] + '/';
  const client = new MongoClient(lb, { serverSelectionTimeoutMS: 1000, directConnection: true });
  try {
    await assert.rejects(client.db('admin').command({ ping: 1 }), (e) => {
      assert.match(String(e.message) + String(e.reason && JSON.stringify(e.reason)), /load balanc/i);
      return true;
    });
  } finally {
    await client.close();
  }
});
