// A real acs-server (gRPC + HTTP with the dashboard, tokens on) and acs-workers on free
// loopback ports with a temporary data dir, for the browser test; stop() ends them.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls `ready` (async, truthy when done) every 200 ms; throws naming `what` after `seconds`.
export async function waitFor(what, ready, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await ready();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export class Stack {
  constructor({ serverBin, workerBin, webRoot, workers = 2 }) {
    Object.assign(this, { serverBin, workerBin, webRoot, workers });
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'acs-web-stack-'));
    this.procs = [];
  }

  async start() {
    const data = path.join(this.dir, 'data');
    const init = spawnSync(this.serverBin, ['--init', '--data-dir', data], { encoding: 'utf8' });
    const match = /admin token \(shown once\): (\S+)/.exec(init.stdout || '');
    if (init.status !== 0 || !match) throw new Error(`acs-server --init: ${init.stdout}${init.stderr}`);
    this.token = match[1];
    const worker = spawnSync(this.serverBin, ['token', '--name', 'web-test-workers', '--role', 'worker', '--data-dir', data],
      { encoding: 'utf8' });
    if (worker.status !== 0) throw new Error(`acs-server token: ${worker.stderr}`);
    this.workerToken = worker.stdout.trim();
    const grpc = `127.0.0.1:${await freePort()}`;
    this.grpc = grpc;
    this.httpPort = await freePort();
    this.base = `http://127.0.0.1:${this.httpPort}`;
    this.log = path.join(this.dir, 'server.log');
    const out = openSync(this.log, 'a');
    this.spawn(this.serverBin, ['--data-dir', data, '--listen', grpc, '--http-listen', `127.0.0.1:${this.httpPort}`,
      '--web-root', this.webRoot, '--log-level', 'warn'], out);
    await waitFor('the HTTP server', async () => (await fetch(`${this.base}/healthz`)).ok, 60);
    for (let i = 1; i <= this.workers; ++i) {
      this.spawn(this.workerBin, ['serve', '--server', grpc, '--token', this.workerToken, '--name', `web-worker-${i}`], out);
    }
    await waitFor('the workers online', async () => {
      const { devices = [] } = await this.api('/api/v1/devices');
      return devices.filter((d) => d.online).length === this.workers;
    }, 120);
    const { devices } = await this.api('/api/v1/devices');
    this.deviceClass = devices[0].device_class;
  }

  spawn(bin, args, out) {
    const p = spawn(bin, args, { stdio: ['ignore', out, out] });
    p.on('exit', (code, signal) => {
      if (!this.stopping) console.error(`${path.basename(bin)} exited (${code ?? signal}); log: ${this.logs()}`);
    });
    this.procs.push(p);
  }

  // The answer of the HTTP API as JSON (admin token); throws with the server's error.
  async api(route, { method = 'GET', json, body } = {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (json) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.base}${route}`, { method, headers, body: json ? JSON.stringify(json) : body });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  // Uploads the model and submits a random search under a FLOPs budget; the Job.
  async submit(modelPath, episodes) {
    const { sha256 } = await this.api('/api/v1/uploads/model', { method: 'POST', body: readFileSync(modelPath) });
    return this.api('/api/v1/jobs', { method: 'POST', json: {
      model_sha256: sha256, input_shape: [1, 1, 28, 28], dataset_name: 'fashion-mnist', device_class: this.deviceClass,
      budget: { kind: 'flops', ratio: 0.5 }, agent: 'random', episodes, top_k: 2 } });
  }

  logs() {
    try {
      return readFileSync(this.log, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  }

  async stop() {
    this.stopping = true;
    const exits = this.procs.reverse().map((p) => new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      const kill = setTimeout(() => p.kill('SIGKILL'), 20000);
      p.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      p.kill('SIGTERM');
    }));
    await Promise.all(exits);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
