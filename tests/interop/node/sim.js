// Starts trellis-sim for a Node test and talks to its control port (as simutil.py does
// for the PyMongo tests). The binary comes from $TRELLIS_SIM (set by CTest); every port is
// chosen by the OS; stop() sends SIGTERM and requires exit status 0 within a second.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { MongoClient } = require('mongodb');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startSim(args = [], { config } = {}) {
  const bin = process.env.TRELLIS_SIM;
  if (!bin || !fs.existsSync(bin)) throw new Error('TRELLIS_SIM is not set to the trellis-sim binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sim-node-'));
  const ready = path.join(dir, 'ready.json');
  const argv = ['--port', '0', '--ready-file', ready, ...args.map(String)];
  if (config !== undefined) {
    fs.writeFileSync(path.join(dir, 'sim.toml'), config);
    argv.push('--config', path.join(dir, 'sim.toml'));
  }
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  proc.stdout.resume();
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let status = null;
  exited.then((s) => { status = s; });
  const deadline = Date.now() + 10000;
  while (!fs.existsSync(ready)) {
    if (status) throw new Error(`trellis-sim exited with ${status.code}: ${log}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('trellis-sim was not ready within 10 s'); }
    await sleep(10);
  }
  const info = JSON.parse(fs.readFileSync(ready, 'utf8'));
  let control = null;
  const sim = {
    uri: info.uri,
    control: info.control,
    members: info.members,
    log: () => log,
    async ctl(command) {
      if (!control) control = new MongoClient(`mongodb://${info.control}/?directConnection=true`, { serverSelectionTimeoutMS: 5000 });
      return control.db('admin').command(command);
    },
    async primary() { return (await sim.ctl({ simStatus: 1 })).primary; },
    async waitFor(predicate, what, timeoutMs = 10000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        try { if (await predicate()) return; } catch (e) { /* not yet */ }
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    },
    // SIGTERM; resolves with the seconds it took; throws unless exit status 0 within limitMs.
    async stop(limitMs = 1000) {
      if (control) { await control.close().catch(() => {}); control = null; }
      if (status) throw new Error(`trellis-sim had already exited with ${status.code}: ${log}`);
      const t0 = process.hrtime.bigint();
      proc.kill('SIGTERM');
      const timer = sleep(limitMs).then(() => 'timeout');
      const result = await Promise.race([exited, timer]);
      if (result === 'timeout') {
        proc.kill('SIGKILL');
        throw new Error(`trellis-sim did not stop within ${limitMs} ms of SIGTERM:\n${log.slice(-3000)}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      if (result.code !== 0) throw new Error(`trellis-sim exited with ${result.code} (${result.signal}):\n${log.slice(-3000)}`);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    },
    kill() { if (!status) proc.kill('SIGKILL'); },
  };
  return sim;
}

module.exports = { startSim, sleep };
