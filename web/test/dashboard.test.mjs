// The dashboard in headless Chromium (playwright-core, Debian's /usr/bin/chromium) against
// a real acs-server with tokens, two real acs-workers and real jobs on loopback. Every page
// is checked on what it shows (DOM contents), not only that it loads; screenshots go to
// $ACS_TEST_ARTIFACTS. Started by run.mjs, which checks what is needed (exit 77 otherwise).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { Stack, waitFor } from './stack.mjs';

const env = process.env;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'BUDGET_NOT_MET'];
const LONG = { timeout: 300000 };  // generous waits for a busy 2-core machine; never a timing claim
let stack, browser, page;

async function shot(name) {
  await page.screenshot({ path: path.join(env.ACS_TEST_ARTIFACTS, `${name}.png`), fullPage: true });
}

const rows = async (testid) => Number(await page.getAttribute(`[data-testid=${testid}]`, 'data-rows'));
const points = async () => Number(await page.getAttribute('[data-testid=curve]', 'data-points'));
// The chart code (ECharts, web/src/chart_engine.js) files the page fetched since it loaded.
const chartCode = () => page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name)
  .filter((name) => /\/chunks\/chart_engine-[^/]*\.js$/.test(name)));

// The raw answer to `GET target` (a client library could normalize the path).
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    // Written, not ended: the server answers a whole request, then closes (Connection: close).
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

before(async () => {
  stack = new Stack({ serverBin: env.ACS_SERVER_BIN, workerBin: env.ACS_WORKER_BIN, webRoot: env.ACS_WEB_ROOT });
  await stack.start();
  browser = await chromium.launch({ executablePath: env.ACS_CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  if (browser) await browser.close();
  if (stack) await stack.stop();
});

test('static files: index, types, nothing outside the web root', async () => {
  const index = await fetch(`${stack.base}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(await index.text(), /<div id="app">/);
  assert.match(index.headers.get('content-security-policy'), /default-src 'self'/);
  const js = await fetch(`${stack.base}/app.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  // The chart code, which app.js imports on demand, from the root's chunks/ directory.
  const chunk = /import\("\.(\/chunks\/chart_engine-[^"]+\.js)"\)/.exec(await js.text());
  assert.ok(chunk, 'app.js imports the chart code on demand');
  const engine = await fetch(`${stack.base}${chunk[1]}`);
  assert.equal(engine.status, 200);
  assert.match(engine.headers.get('content-type'), /^text\/javascript/);
  const css = await fetch(`${stack.base}/app.css`);
  assert.match(css.headers.get('content-type'), /^text\/css/);
  for (const target of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '//etc/passwd',
    '/nonexistent.js']) {
    const answer = await rawGet(stack.httpPort, target);
    assert.match(answer, /^HTTP\/1\.1 404/, `${target}: ${answer.slice(0, 120)}`);
    assert.doesNotMatch(answer, /root:/, target);
  }
  // The API still answers its own errors, and asks for a token.
  assert.equal((await fetch(`${stack.base}/api/v1/jobs`)).status, 401);
});

test('a wrong token is refused with a visible message; the right one signs in', async () => {
  await page.goto(`${stack.base}/#/jobs`);
  await page.waitForSelector('[data-testid=login-error]');
  assert.match(await page.textContent('[data-testid=login-error]'), /refused.*UNAUTHENTICATED/s);
  await page.fill('[data-testid=token-input]', 'acs_a_not-a-real-token');
  await page.click('[data-testid=login-button]');
  await page.waitForFunction(() => /refused this token/.test(document.querySelector('[data-testid=login-error]')?.textContent));
  assert.equal(await page.evaluate(() => localStorage.getItem('acs.token')), null);
  await shot('login-refused');
  await page.fill('[data-testid=token-input]', stack.token);
  await page.click('[data-testid=login-button]');
  await page.waitForSelector('[data-testid=jobs-table]');
  assert.equal(await page.evaluate(() => localStorage.getItem('acs.token')), stack.token);
});

test('the submit form offers the names the server checks (GET /api/v1/search-space)', async () => {
  const choices = await stack.api('/api/v1/search-space');
  assert.ok(choices.agents.includes('random') && choices.budget_kinds.includes('flops'), JSON.stringify(choices));
  await page.goto(`${stack.base}/#/submit`);
  await page.waitForSelector('[data-testid=submit-form]');
  const options = (name) => page.$$eval(`select[name=${name}] option`, (os) => os.map((o) => o.value));
  assert.deepEqual(await options('agent'), choices.agents);
  assert.deepEqual(await options('budget'), choices.budget_kinds);
  assert.equal(await page.inputValue('select[name=agent]'), choices.default_agent);
  const checks = (testid) => page.$$eval(`[data-testid=${testid}] label.check`, (ls) => ls.map((l) => l.textContent.trim()));
  assert.deepEqual(await checks('patterns'), choices.patterns);
  assert.deepEqual(await checks('precisions'), choices.precisions);
  // What an empty choice means, as the server said it.
  assert.match(await page.textContent('[data-testid=patterns]'), new RegExp(choices.defaults.patterns.join(', ')));
});

// The events of a job's stream that has ended (the SSE body read to its end).
async function eventsOf(id) {
  const res = await fetch(`${stack.base}/api/v1/jobs/${id}/events`, { headers: { Authorization: `Bearer ${stack.token}` } });
  const text = await res.text();
  return text.split('\n\n').map((block) => {
    const data = block.split('\n').find((l) => l.startsWith('data: '));
    return data ? JSON.parse(data.slice(6)) : null;
  }).filter(Boolean);
}

let cancelledId = '';
test('a job submitted from the form: its curve grows while it runs, and cancel ends it', LONG, async () => {
  await page.goto(`${stack.base}/#/submit`);
  await page.setInputFiles('input[name=model]', env.ACS_TEST_MODEL);
  await page.fill('input[name=shape]', '1x1x28x28');
  await page.fill('input[name=dataset]', 'fashion-mnist');
  await page.selectOption('select[name=budget]', 'flops');
  await page.fill('input[name=ratio]', '0.5');
  await page.selectOption('select[name=agent]', 'random');
  await page.fill('input[name=episodes]', '400');
  await page.fill('input[name=time_limit]', '3600');
  await page.waitForFunction((c) => [...document.querySelectorAll('select[name=device_class] option')].some((o) => o.value === c),
    stack.deviceClass);
  await page.click('[data-testid=submit-button]');
  await page.waitForURL(/#\/job\/job-/, { timeout: 120000 });
  cancelledId = decodeURIComponent(page.url().split('#/job/')[1]);
  // The form's time limit reached the server (an int64: a string in proto's JSON).
  assert.equal(Number((await stack.api(`/api/v1/jobs/${cancelledId}`)).request.time_limit_seconds), 3600);
  await page.waitForSelector('[data-testid=job-summary]');
  assert.match(await page.textContent('[data-testid=job-summary]'), /time limit3600 s of running/);
  // Two readings of the live curve, the second with more points than the first.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=curve]')?.dataset.points) > 0, null,
    { timeout: 240000 });
  const first = await points();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=curve]').dataset.points) > n, first,
    { timeout: 240000 });
  const second = await points();
  assert.ok(second > first, `${second} > ${first}`);
  assert.match(await page.textContent('[data-testid=job-state]'), /SEARCHING/);
  await shot('job-running');
  await page.click('[data-testid=cancel-job]');
  await page.waitForFunction(() => document.querySelector('[data-testid=job-state]').textContent === 'CANCELLED', null,
    { timeout: 120000 });
  assert.equal((await stack.api(`/api/v1/jobs/${cancelledId}`)).state, 'CANCELLED');
  assert.match(await page.textContent('[data-testid=budget-verdict]'), /not verified/);
});

let job;
test('a job to its end: the jobs table, its curve, policy, verification and artifacts', LONG, async () => {
  const submitted = await stack.submit(env.ACS_TEST_MODEL, 8);
  job = await waitFor(`job ${submitted.id} to end`, async () => {
    const j = await stack.api(`/api/v1/jobs/${submitted.id}`);
    return TERMINAL.includes(j.state) && j;
  }, 600);
  assert.equal(job.state, 'SUCCEEDED', job.error);

  await page.goto(`${stack.base}/#/jobs`);
  await page.reload();  // a first load of the jobs page: it fetches no chart code
  await page.waitForSelector(`[data-testid=jobs-table] tr[data-key="${job.id}"]`);
  assert.deepEqual(await chartCode(), []);
  const table = await page.textContent('[data-testid=jobs-table]');
  assert.match(table, new RegExp(`${job.id}\\s*SUCCEEDED`));
  assert.match(table, new RegExp(`${cancelledId}\\s*CANCELLED`));
  assert.match(table, /flops 0\.50x/);
  assert.match(table, /random/);
  await shot('jobs');
  const [model] = await Promise.all([page.waitForEvent('download'),
    page.click(`[data-testid=jobs-table] tr[data-key="${job.id}"] button:has-text("compressed.pt")`)]);
  assert.equal(model.suggestedFilename(), 'compressed.pt');
  const bytes = job.artifacts.find((a) => a.name === 'compressed.pt').bytes;
  assert.equal(readFileSync(await model.path()).length, Number(bytes));
  // The search and the state filter go into the URL, and a link to it shows the same.
  await page.fill('[data-testid=job-search]', job.id);
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs-table]').dataset.rows === '1');
  assert.match(page.url(), new RegExp(`q=${job.id}`));
  await page.goto(`${stack.base}/#/jobs?state=CANCELLED`);
  // Count once the server's answer for the new state shows (and no row of another state).
  await page.waitForFunction((id) => {
    const trs = [...document.querySelectorAll('[data-testid=jobs-table] tr[data-key]')];
    const cancelled = (tr) => [...tr.cells].some((td) => td.textContent === 'CANCELLED');
    return trs.some((tr) => tr.dataset.key === id) && trs.every(cancelled);
  }, cancelledId);
  assert.equal(await page.locator(`[data-testid=jobs-table] tr[data-key="${cancelledId}"]`).count(), 1);
  assert.equal(await rows('jobs-table'), 1, 'only the cancelled job is in state CANCELLED');
  // CSV of the table.
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('text=CSV')]);
  assert.match(readFileSync(await csv.path(), 'utf8'), new RegExp(`^job,state,.*\\n${cancelledId},CANCELLED,`, 's'));

  // A list whose answer takes longer than the page's 3 s refresh still shows: the next
  // refresh waits for the fetch under way instead of starting over.
  const listing = (url) => url.pathname === '/api/v1/jobs';
  await page.route(listing, async (route) => {
    try {
      const response = await route.fetch();
      await new Promise((resolve) => setTimeout(resolve, 4000));
      await route.fulfill({ response });
    } catch {}  // the page went on meanwhile
  });
  await page.goto(`${stack.base}/#/jobs`);
  await page.reload();
  await page.waitForSelector(`[data-testid=jobs-table] tr[data-key="${job.id}"]`, { timeout: 60000 });
  await page.unroute(listing);

  // Two jobs chosen in the table, compared.
  await page.goto(`${stack.base}/#/jobs`);
  await page.check(`[data-testid=jobs-table] tr[data-key="${job.id}"] input[type=checkbox]`);
  await page.check(`[data-testid=jobs-table] tr[data-key="${cancelledId}"] input[type=checkbox]`);
  await page.click('[data-testid=compare-link]');
  await page.waitForFunction(() => document.querySelector('[data-testid=compare-table]')?.dataset.rows === '2');
  // The curves load after the table: wait for them rather than read them once.
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=compare-curves]')?.dataset.points) === n,
    job.episodes_done);
  // The first chart of this load fetched the chart code, once, and drew.
  await page.waitForSelector('[data-testid=compare-curves] canvas');
  assert.equal((await chartCode()).length, 1);
  assert.ok(await rows('compare-policies') >= 1, 'compared policy rows');
  await shot('compare');

  await page.goto(`${stack.base}/#/job/${job.id}`);
  await page.waitForSelector('[data-testid=verification-table]');
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=curve]')?.dataset.points) === n,
    job.episodes_done);
  assert.match(await page.textContent('[data-testid=curve-count]'), new RegExp(`${job.episodes_done} episodes`));
  await page.waitForSelector('[data-testid=policy-table]');
  assert.ok(await rows('policy-table') >= 1, 'policy rows');
  assert.match(await page.textContent('[data-testid=policy-table]'), /channel|block|int8|unstructured/);
  // Every layer of the model (two convolutions and the linear layer) with its FLOPs dense and
  // as compressed, from report.json's "layers"; a FLOPs job has no predicted latency per layer.
  const reportJson = await stack.api(`/api/v1/jobs/${job.id}/artifacts/report.json`);
  assert.equal(reportJson.layers.length, 3);
  // The table shows the policy first and every layer once report.json has loaded.
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=policy-table]')?.dataset.rows) === n,
    reportJson.layers.length);
  const policyText = await page.textContent('[data-testid=policy-table]');
  assert.match(policyText, /FLOPs dense.*FLOPs compressed.*FLOPs kept/s);
  for (const l of reportJson.layers) {
    assert.match(policyText, new RegExp(l.name.replace('.', '\\.')));
    assert.ok(l.flops <= l.flops_dense && l.flops_dense > 0, JSON.stringify(l));
    assert.equal(l.predicted_us, undefined);
  }
  assert.ok(reportJson.layers.reduce((a, l) => a + l.flops, 0) <= 0.5 * reportJson.layers.reduce((a, l) => a + l.flops_dense, 0) * 1.0001,
    'the exported policy holds the FLOPs budget layer by layer');
  assert.match(await page.textContent('[data-testid=policy-note]'), /not a latency budget/);
  assert.ok(await rows('verification-table') >= 1, 'verification rows');
  // VERIFIED events carry the measurement as numbers beside their text.
  const verified = (await eventsOf(job.id)).filter((e) => e.kind === 'VERIFIED');
  assert.ok(verified.length >= 1, 'VERIFIED events');
  for (const e of verified) {
    const v = e.verification;
    assert.ok(v && typeof v.measured_latency_us === 'number', JSON.stringify(e));
    if (!v.error) {
      assert.ok(v.measured_latency_us > 0 && v.dense_measured_latency_us > 0, JSON.stringify(v));
      assert.ok(Math.abs(v.measured_speedup - v.dense_measured_latency_us / v.measured_latency_us) < 1e-9);
      assert.match(e.message, new RegExp(`measured ${Math.round(v.measured_latency_us)} us`));
    }
  }
  assert.match(await page.textContent('[data-testid=verification-table]'), /#1 [0-9a-f]+.*µs/s);
  assert.match(await page.textContent('[data-testid=budget-verdict]'), /flops budget 0\.50x held/);
  assert.match(await page.textContent('[data-testid=job-log]'), /SUCCEEDED/);
  const [report] = await Promise.all([page.waitForEvent('download'),
    page.click('[data-testid=artifacts] li:has-text("report.json") button')]);
  assert.equal(report.suggestedFilename(), 'report.json');
  assert.equal(JSON.parse(readFileSync(await report.path(), 'utf8')).job, job.id);
  await page.click('summary:has-text("report.json")');
  assert.match(await page.textContent('pre.report'), new RegExp(`"job": "${job.id}"`));
  await shot('job');
});

test('fleet shows the workers and their device class', async () => {
  await page.goto(`${stack.base}/#/fleet`);
  await page.waitForFunction(() => document.querySelector('[data-testid=workers-table]')?.dataset.rows === '2');
  const workers = await page.textContent('[data-testid=workers-table]');
  assert.equal(workers.match(/online/g).length, 2);
  assert.match(workers, new RegExp(stack.deviceClass));
  assert.match(await page.textContent('[data-testid=classes-table]'), new RegExp(`${stack.deviceClass}\\s*2 of 2`));
  await shot('fleet');
});

test('predictors shows the device class and says why it has no evaluation', async () => {
  await page.goto(`${stack.base}/#/predictors?class=${encodeURIComponent(stack.deviceClass)}`);
  await page.waitForFunction(() => document.querySelector('[data-testid=predictors-table]')?.dataset.rows === '1');
  const status = await stack.api(`/api/v1/predictors/${encodeURIComponent(stack.deviceClass)}`);
  assert.match(await page.textContent('[data-testid=predictors-table]'), new RegExp(`${stack.deviceClass}\\s*${status.state}`));
  // A FLOPs job measures no kernels: the evaluation's refusal is shown as the server said it,
  // and no empty chart.
  await page.waitForSelector('[data-testid=evaluation-error]');
  assert.match(await page.textContent('[data-testid=evaluation-error]'), /no kernel measurements of device class/);
  assert.match(await page.textContent('[data-testid=predictor-charts-none]'), /No charts/);
  assert.equal(await page.$('[data-testid=latency-vs-flops]'), null);
  await shot('predictors');
});

// Runs `acs` with `args` without blocking the event loop (the HTTP client's idle connections
// must see the server close them); { status, stderr }.
function runCli(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(env.ACS_CLI_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('exit', (status) => resolve({ status, stderr }));
  });
}

test('predictors charts the kernels of a small measurement campaign', LONG, async () => {
  const ran = await runCli(['predictor', 'campaign', '--server', stack.grpc, '--token', stack.token,
    '--device-class', stack.deviceClass, '--samples', '24', '--wait']);
  assert.equal(ran.status, 0, `acs predictor campaign: ${ran.stderr}`);
  const evaluation = await stack.api(`/api/v1/predictors/${encodeURIComponent(stack.deviceClass)}/evaluation`);
  const all = evaluation.points;
  assert.equal(all.length, evaluation.train_kernels + evaluation.heldout_kernels);
  const predicted = all.filter((p) => p.held_out && p.predicted_us > 0).length;
  assert.ok(predicted > 0 && all.length > predicted, `${predicted} predicted of ${all.length}`);

  await page.goto(`${stack.base}/#/predictors?class=${encodeURIComponent(stack.deviceClass)}`);
  await page.reload();  // the same route as the test before: asked again only on a new load
  await page.waitForSelector('[data-testid=latency-vs-flops]');
  const drawn = async (testid) => Number(await page.getAttribute(`[data-testid=${testid}]`, 'data-points'));
  assert.equal(await drawn('predicted-vs-measured'), predicted);
  assert.equal(await drawn('latency-vs-flops'), all.length);
  assert.equal(await page.textContent('[data-testid=predicted-count]'), `${predicted} held-out kernels`);
  assert.equal(await page.textContent('[data-testid=flops-count]'), `${all.length} kernels`);
  assert.equal(await page.$('[data-testid=predictor-charts-none]'), null);
  // Each chart drew on its canvas (once the chart code is in).
  for (const testid of ['predicted-vs-measured', 'latency-vs-flops']) {
    await page.waitForSelector(`[data-testid=${testid}] canvas`);
    assert.ok(await page.$eval(`[data-testid=${testid}] canvas`, (c) => c.width > 0 && c.height > 0), testid);
  }
  await shot('predictors-charts');
});

test('campaigns: a run made by `acs campaign run`, listed and shown with its cells', LONG, async () => {
  const spec = path.join(env.ACS_TEST_ARTIFACTS, 'web-campaign.json');
  writeFileSync(spec, JSON.stringify({ name: 'web-nightly', models: [{ name: 'small', path: env.ACS_TEST_MODEL,
    input: [1, 1, 28, 28], data: 'name:fashion-mnist' }], device_classes: [stack.deviceClass], budgets: ['flops=0.5x'],
  agents: ['random'], episodes: 3, top_k: 1 }));
  const ran = await runCli(['campaign', 'run', spec, '--server', stack.grpc, '--token', stack.token,
    '--date', '2026-01-02', '--format', 'json', '--out', path.join(env.ACS_TEST_ARTIFACTS, 'web-campaign-report.json')]);
  assert.ok([0, 4].includes(ran.status), `acs campaign run: ${ran.status} ${ran.stderr}`);
  const { runs } = await stack.api('/api/v1/campaigns/runs');
  assert.equal(runs.length, 1);
  const run = await stack.api(`/api/v1/campaigns/runs/${runs[0].id}`);

  await page.goto(`${stack.base}/#/jobs`);
  await page.click('nav a:has-text("Campaigns")');
  await page.waitForFunction(() => document.querySelector('[data-testid=runs-table]')?.dataset.rows === '1');
  const listed = await page.textContent('[data-testid=runs-table]');
  assert.match(listed, /2026-01-02\s*web-nightly/);
  await page.click('[data-testid=runs-table] a:has-text("2026-01-02")');
  await page.waitForFunction(() => document.querySelector('[data-testid=cells-table]')?.dataset.rows === '1');
  const cell = run.cells[0];
  const cells = await page.textContent('[data-testid=cells-table]');
  assert.ok(cells.includes(cell.key), cells);
  assert.ok(cells.includes(cell.job_id), cells);
  assert.match(cells, new RegExp(cell.state));
  const summary = await page.textContent('[data-testid=run-summary]');
  assert.match(summary, cell.state === 'SUCCEEDED' ? /1 of 1 cells succeeded/ : /0 of 1 cells succeeded, 1 failed/);
  // The job's measured speedup shows once its job was read.
  const cellJob = await stack.api(`/api/v1/jobs/${cell.job_id}`);
  if (cellJob.best_measured_latency_us > 0) {
    const x = (cellJob.dense_measured_latency_us / cellJob.best_measured_latency_us).toFixed(2);
    await page.waitForFunction((t) => document.querySelector('[data-testid=cells-table]').textContent.includes(t), `${x}x`);
  }
  await shot('campaign');
  // A filter on another campaign's name, in the URL, shows none.
  await page.goto(`${stack.base}/#/campaigns?campaign=other`);
  await page.waitForFunction(() => document.querySelector('[data-testid=runs-table]')?.dataset.rows === '0');
});

test('dark mode stays on across a reload', async () => {
  await page.goto(`${stack.base}/#/jobs`);
  const before = await page.evaluate(() => document.documentElement.classList.contains('dark'));
  await page.click('[data-testid=dark-toggle]');
  await page.reload();
  await page.waitForSelector('[data-testid=jobs-table]');
  assert.equal(await page.evaluate(() => document.documentElement.classList.contains('dark')), !before);
  await shot('jobs-dark');
});
