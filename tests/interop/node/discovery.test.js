// The official Node.js driver discovers each simulated topology as it would a real one,
// and its SDAM events (opening, heartbeats over the streaming protocol, description
// changes) follow a stepdown.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { MongoClient } = require('mongodb');
const { startSim } = require('./sim');

// A client that remembers its latest topology description and its SDAM events.
function watched(uri, options = {}) {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000, heartbeatFrequencyMS: 500, ...options });
  const seen = { description: null, events: [] };
  for (const name of ['topologyOpening', 'serverOpening', 'serverDescriptionChanged', 'topologyDescriptionChanged',
    'serverHeartbeatSucceeded', 'serverHeartbeatFailed', 'topologyClosed']) {
    client.on(name, (e) => {
      seen.events.push({ name, e });
      if (name === 'topologyDescriptionChanged') seen.description = e.newDescription;
    });
  }
  return { client, seen };
}

function serverTypes(description) {
  return [...description.servers.values()].map((s) => s.type).sort();
}

test('standalone: Single topology, one Standalone server', async () => {
  const sim = await startSim(['--topology', 'standalone']);
  const { client, seen } = watched(sim.uri);
  try {
    await client.db('admin').command({ ping: 1 });
    assert.equal(seen.description.type, 'Single');
    assert.deepEqual(serverTypes(seen.description), ['Standalone']);
    const hello = await client.db('admin').command({ hello: 1 });
    assert.equal(hello.isWritablePrimary, true);
    assert.equal(hello.maxWireVersion, 21);
  } finally {
    await client.close();
    await sim.stop();
  }
});

test('replica set: primary, secondaries, arbiter and set name; SDAM events through a stepdown', async () => {
  const sim = await startSim(['--topology', 'replset', '--nodes', '3', '--arbiter', '--election-delay-ms', '100']);
  const { client, seen } = watched(sim.uri);
  try {
    await client.db('admin').command({ ping: 1 });
    await sim.waitFor(() => serverTypes(seen.description).join() === 'RSArbiter,RSPrimary,RSSecondary,RSSecondary',
      'every member discovered');
    assert.equal(seen.description.type, 'ReplicaSetWithPrimary');
    assert.equal(seen.description.setName, 'rs0');
    const names = seen.events.map((x) => x.name);
    assert.equal(names[0], 'topologyOpening');
    assert.equal(names.filter((n) => n === 'serverOpening').length, 4);
    // Streaming monitoring: awaited heartbeats succeed (the sim holds awaitable hellos).
    await sim.waitFor(() => seen.events.some((x) => x.name === 'serverHeartbeatSucceeded' && x.e.awaited),
      'an awaited heartbeat');

    const old = await sim.primary();
    await sim.ctl({ simStepDown: old, secs: 30 });
    await sim.waitFor(async () => {
      const p = [...seen.description.servers.values()].find((s) => s.type === 'RSPrimary');
      return p && p.address !== old;
    }, 'the client to see a new primary');
    const changed = seen.events.filter((x) => x.name === 'serverDescriptionChanged' && x.e.address === old);
    assert.ok(changed.some((x) => x.e.previousDescription.type === 'RSPrimary' && x.e.newDescription.type === 'RSSecondary'),
      'the old primary was seen stepping down');
    assert.equal(await sim.primary(), [...seen.description.servers.values()].find((s) => s.type === 'RSPrimary').address);
  } finally {
    await client.close();
    assert.ok(seen.events.some((x) => x.name === 'topologyClosed'));
    await sim.stop();
  }
});

test('sharded: Sharded topology of two Mongos', async () => {
  const sim = await startSim(['--topology', 'sharded', '--mongos', '2', '--shard-replset', '--nodes', '2']);
  const { client, seen } = watched(sim.uri);
  try {
    await client.db('s').collection('c').insertOne({ a: 1 });
    await sim.waitFor(() => serverTypes(seen.description).join() === 'Mongos,Mongos', 'both routers');
    assert.equal(seen.description.type, 'Sharded');
    assert.equal((await client.db('s').collection('c').findOne({ a: 1 })).a, 1);
    const hello = await client.db('admin').command({ hello: 1 });
    assert.equal(hello.msg, 'isdbgrid');
  } finally {
    await client.close();
    await sim.stop();
  }
});
