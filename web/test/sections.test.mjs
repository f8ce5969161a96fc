// The job page's per-layer rows (policy.json beside report.json's "layers"), a VERIFIED
// event's measurement as a verification row, a campaign run's cell counts, and the jobs
// page's refresh and list fetch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policyRows, verificationRow } from '../src/pages/job_sections.js';
import { cellCounts } from '../src/pages/campaigns.js';
import { refreshLoop } from '../src/pages/jobs.js';
import { listJobs } from '../src/api.js';

test('every layer of report.json is a row, with its policy beside its FLOPs and predicted latency', () => {
  const policy = { version: 1, layers: { 'features.3': { pattern: 'block', sparsity: 0.5, block: 8, precision: 'int8' } } };
  const report = { layers: [
    { name: 'features.0', type: 'conv2d', flops_dense: 1000, flops: 1000, predicted_us: 5, dense_predicted_us: 5 },
    { name: 'features.3', type: 'conv2d', flops_dense: 4000, flops: 2000, predicted_us: 3, dense_predicted_us: 9 },
  ] };
  const rows = policyRows(policy, report);
  assert.deepEqual(rows.map((r) => r.layer), ['features.0', 'features.3']);  // the model's order, dense layers too
  assert.equal(rows[0].listed, false);
  assert.equal(rows[1].pattern, 'block');
  assert.equal(rows[1].flops, 2000);
  assert.equal(rows[1].dense_predicted_us, 9);
  // Without report.json's layers (an older job): the policy's layers alone.
  assert.deepEqual(policyRows(policy, {}).map((r) => r.layer), ['features.3']);
});

test('a VERIFIED event becomes a verification row named as report.json names it', () => {
  const row = verificationRow({ rank: 0, run: 2, policy_hash: 'abc', accuracy: 0.9, predicted_latency_us: 90,
    measured_latency_us: 80, dense_measured_latency_us: 200, stock_measured_latency_us: 0,
    acs_file_measured_latency_us: 85, error: '' }, 7);
  assert.deepEqual(row, { rank: 0, run: 2, policy_hash: 'abc', accuracy: 0.9, predicted_us: 90, measured_us: 80,
    dense_measured_us: 200, stock_us: 0, acs_file_us: 85, error: '', task_id: 'event-7' });
});

test('a run counts cells with a result, failed ones, running ones and never submitted ones', () => {
  const counts = cellCounts([
    { key: 'a', job_id: 'j1', state: 'SUCCEEDED' }, { key: 'b', job_id: 'j2', state: 'BUDGET_NOT_MET' },
    { key: 'c', job_id: 'j3', state: 'CANCELLED' }, { key: 'd', job_id: 'j4', state: 'SEARCHING' },
    { key: 'e', job_id: '', state: 'JOB_STATE_UNSPECIFIED' }]);
  assert.deepEqual(counts, { cells: 5, results: 1, failed: 2, running: 1, pending: 1 });
});

test('the jobs list refreshes only after a fetch ends, shows its pages as they come, nothing once stopped', async () => {
  const due = [];  // refreshes scheduled, run by hand: no clock
  const timers = { setTimeout: (run) => due.push(run), clearTimeout: () => {} };
  const answers = [];  // fetches under way, answered by hand
  const fetchList = (onPage) => new Promise((resolve) => answers.push((pages) => {
    pages.slice(0, -1).forEach((page) => onPage(page));
    resolve(pages.at(-1));
  }));
  const shown = [];
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const stop = refreshLoop(fetchList, (list, complete) => shown.push([list.length, complete]), assert.fail,
    () => 3000, timers);
  assert.equal(answers.length, 1);
  assert.equal(due.length, 0, 'no refresh is due while the first fetch is under way');
  answers.shift()([[1], [1, 2], [1, 2, 3]]);
  await settle();
  assert.deepEqual(shown, [[1, false], [2, false], [3, true]]);
  assert.equal(due.length, 1);
  due.shift()();
  assert.equal(answers.length, 1);
  stop();
  answers.shift()([[1], [1, 2]]);
  await settle();
  assert.equal(shown.length, 3, 'a stopped refresh shows nothing');
  assert.equal(due.length, 0);
});

test('the jobs list asks for the summary view page after page, each page from the last one\'s token', async () => {
  const pages = { '': { jobs: [{ id: 'a' }, { id: 'b' }], next_page_token: 'b' }, b: { jobs: [{ id: 'c' }], next_page_token: '' } };
  const asked = [];
  const saved = { fetch: globalThis.fetch, localStorage: globalThis.localStorage };
  globalThis.localStorage = { getItem: () => 'token-1' };
  globalThis.fetch = async (path, init) => {
    const url = new URL(path, 'http://acs');
    asked.push({ path: url.pathname, params: Object.fromEntries(url.searchParams), auth: init.headers.Authorization });
    return { ok: true, json: async () => pages[url.searchParams.get('page_token') || ''] };
  };
  const shown = [];
  const jobs = await listJobs('SUCCEEDED', (so_far) => shown.push(so_far.map((j) => j.id)));
  assert.deepEqual(jobs.map((j) => j.id), ['a', 'b', 'c']);
  assert.deepEqual(shown, [['a', 'b']], 'every page but the last shown as it comes');
  assert.deepEqual(asked, [
    { path: '/api/v1/jobs', params: { page_size: '1000', view: 'summary', state: 'SUCCEEDED' }, auth: 'Bearer token-1' },
    { path: '/api/v1/jobs', params: { page_size: '1000', view: 'summary', state: 'SUCCEEDED', page_token: 'b' },
      auth: 'Bearer token-1' },
  ]);
  Object.assign(globalThis, saved);
});
