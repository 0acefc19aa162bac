// mongosh 2.x against each simulated topology: the helpers operators type (db.hello(),
// rs.status(), rs.conf(), db.serverStatus(), listDatabases, show dbs, show collections,
// CRUD, db.c.stats()). The script goes in on stdin, as typed; results come back as
// "@@ name {EJSON}" lines, and the shell's own output of show dbs/collections as text.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startSim } = require('./sim');

const MONGOSH = path.join(__dirname, 'node_modules', '.bin', 'mongosh');

// No network but loopback: no telemetry, no update check (--quiet and CI skip it); logs and
// history in a throw-away home.
function mongosh(uri, lines) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-mongosh-'));
  const env = { ...process.env, HOME: home, CI: '1', MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING: '1' };
  return new Promise((resolve, reject) => {
    const p = spawn(MONGOSH, [uri, '--quiet', '--norc'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`mongosh timed out:\n${out}\n${err}`)); }, 60000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      fs.rmSync(home, { recursive: true, force: true });
      const results = {};
      for (const m of out.matchAll(/@@ (\w+) (.*)/g)) results[m[1]] = JSON.parse(m[2]);
      resolve({ code, out, err, results });
    });
    p.stdin.end(lines.join('\n') + '\n');
  });
}

// Prints `expr` as an "@@ name" line; an error thrown becomes {error, code}.
const emit = (name, expr) =>
  `try { print('@@ ${name} ' + EJSON.stringify(${expr}, {relaxed: true})) } catch (e) { print('@@ ${name} ' + JSON.stringify({error: e.message, code: e.code})) }`;

const common = [
  emit('hello', 'db.hello()'),
  emit('serverStatus', '(({host, process, version, uptime, connections, opcounters, network}) => ({host, process, version, uptime, connections, opcounters, network}))(db.serverStatus())'),
  'use shop',
  emit('insert', 'db.items.insertMany([{sku: "a", qty: 1}, {sku: "b", qty: 5}, {sku: "c", qty: 9}]).insertedIds'),
  emit('update', 'db.items.updateOne({sku: "b"}, {$inc: {qty: 1}})'),
  emit('find', 'db.items.find({qty: {$gt: 2}}, {_id: 0}).sort({sku: 1}).toArray()'),
  emit('remove', 'db.items.deleteOne({sku: "a"})'),
  emit('count', 'db.items.countDocuments()'),
  emit('listDatabases', 'db.adminCommand({listDatabases: 1}).databases.map(d => d.name)'),
  emit('stats', '(({ns, count, size, nindexes}) => ({ns, count, size, nindexes}))(db.items.stats())'),
  "print('@@ showdbs ' + JSON.stringify('begin'))",
  'show dbs',
  "print('@@ showcollections ' + JSON.stringify('begin'))",
  'db.createCollection("other")',
  'show collections',
  "print('@@ end ' + JSON.stringify('end'))",
];

function checkCommon(t, r, member) {
  assert.equal(r.results.hello.isWritablePrimary, true, r.out);
  assert.equal(r.results.hello.maxWireVersion, 21);
  const ss = r.results.serverStatus;
  assert.equal(typeof ss.uptime, 'number');
  assert.ok(ss.connections.current >= 1);
  assert.ok(ss.network.numRequests > 0);
  if (member) assert.equal(ss.host, member);
  assert.equal(Object.keys(r.results.insert).length, 3);
  assert.deepEqual([r.results.update.matchedCount, r.results.update.modifiedCount], [1, 1]);
  assert.deepEqual(r.results.find, [{ sku: 'b', qty: 6 }, { sku: 'c', qty: 9 }]);
  assert.equal(r.results.remove.deletedCount, 1);
  assert.equal(r.results.count, 2);
  assert.ok(r.results.listDatabases.includes('shop'), JSON.stringify(r.results.listDatabases));
  assert.deepEqual([r.results.stats.ns, r.results.stats.count, r.results.stats.nindexes], ['shop.items', 2, 1]);
  assert.ok(r.results.stats.size > 0);
  // The shell's own listings, between the markers.
  const dbs = r.out.slice(r.out.indexOf('@@ showdbs'), r.out.indexOf('@@ showcollections'));
  assert.match(dbs, /\bshop\s+\d+(\.\d+)?\s*\w*B/, dbs);
  const colls = r.out.slice(r.out.indexOf('@@ showcollections'), r.out.indexOf('@@ end'));
  assert.match(colls, /\bitems\b/);
  assert.match(colls, /\bother\b/);
}

test('mongosh: standalone', async (t) => {
  const sim = await startSim(['--topology', 'standalone']);
  try {
    const r = await mongosh(sim.uri, common);
    assert.equal(r.code, 0, r.err);
    checkCommon(t, r, sim.members[0]);
    assert.equal(r.results.serverStatus.process, 'mongod');
  } finally {
    await sim.stop();
  }
});

test('mongosh: replica set, rs.status() and rs.conf()', async (t) => {
  const sim = await startSim(['--topology', 'replset', '--nodes', '3']);
  try {
    const r = await mongosh(sim.uri, [
      ...common,
      emit('status', '(s => ({set: s.set, myState: s.myState, members: s.members.map(m => [m.name, m.stateStr, typeof m.optimeDate])}))(rs.status())'),
      emit('conf', '(c => ({_id: c._id, version: c.version, hosts: c.members.map(m => m.host)}))(rs.conf())'),
      emit('helloSet', '(h => [h.setName, h.hosts.length, h.primary])(db.hello())'),
    ]);
    assert.equal(r.code, 0, r.err);
    const primary = await sim.primary();
    checkCommon(t, r, primary);
    assert.equal(r.results.status.set, 'rs0');
    assert.equal(r.results.status.myState, 1);
    assert.deepEqual(r.results.status.members.map((m) => m[0]).sort(), [...sim.members].sort());
    assert.deepEqual(r.results.status.members.map((m) => m[1]).sort(), ['PRIMARY', 'SECONDARY', 'SECONDARY']);
    assert.ok(r.results.status.members.every((m) => m[2] === 'object'), 'optimeDate is a date');
    assert.equal(r.results.conf._id, 'rs0');
    assert.deepEqual(r.results.conf.hosts.sort(), [...sim.members].sort());
    assert.deepEqual(r.results.helloSet, ['rs0', 3, primary]);
  } finally {
    await sim.stop();
  }
});

test('mongosh: sharded, through a router', async (t) => {
  const sim = await startSim(['--topology', 'sharded', '--mongos', '2']);
  try {
    const r = await mongosh(sim.uri, [...common, emit('msg', 'db.hello().msg')]);
    assert.equal(r.code, 0, r.err);
    checkCommon(t, r, null);
    assert.equal(r.results.msg, 'isdbgrid');
    assert.equal(r.results.serverStatus.process, 'mongos');
  } finally {
    await sim.stop();
  }
});
