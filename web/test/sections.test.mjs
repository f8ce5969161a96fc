// The job page's per-layer rows (policy.json beside report.json's "layers"), a VERIFIED
// event's measurement as a verification row, a campaign run's cell counts, and the jobs
// page's refresh and list fetch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policyRows, verificationRow } from '../src/pages/job_sections.js';
import { cellCounts } from '../src/pages/campaigns.js';
import { refreshLoop } from '../src/pages/jobs.js';
import { listJobs } from '../src/api.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));

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

// Answers list requests by hand: `asked` holds each request's params and answer function.
function fakeListServer() {
  const asked = [];
  const saved = { fetch: globalThis.fetch, localStorage: globalThis.localStorage };
  globalThis.localStorage = { getItem: () => 'token-1' };
  globalThis.fetch = (path, init) => new Promise((resolve) => {
    const url = new URL(path, 'http://acs');
    assert.equal(url.pathname, '/api/v1/jobs');
    assert.equal(init.headers.Authorization, 'Bearer token-1');
    asked.push({ params: Object.fromEntries(url.searchParams),
      answer: (reply, status = 200) => resolve({ ok: status === 200, status, json: async () => reply,
        text: async () => JSON.stringify(reply) }) });
  });
  return { asked, restore: () => Object.assign(globalThis, saved) };
}
const page = (ids, next) => ({ jobs: ids.map((id) => ({ id })), next_page_token: next });

test('the jobs list asks the first page alone, then the next ones four at a time by offset', async () => {
  const server = fakeListServer();
  const shown = [];
  let done = null;
  listJobs('SUCCEEDED', (so_far) => shown.push(so_far.map((j) => j.id))).then((jobs) => { done = jobs; });
  const params = (offset) => ({ page_size: '1000', view: 'summary', state: 'SUCCEEDED',
    ...(offset ? { offset: String(offset) } : {}) });
  assert.deepEqual(server.asked.map((a) => a.params), [params(0)], 'one request until the first page answers');
  server.asked[0].answer(page(['a', 'b'], 'b'));
  await settle();
  assert.deepEqual(shown, [['a', 'b']]);
  assert.deepEqual(server.asked.map((a) => a.params), [0, 1000, 2000, 3000, 4000].map(params),
    'more follow: the next four asked at once');
  // The third page first: nothing more shown (the second is missing), the sixth page asked.
  server.asked[2].answer(page(['e', 'f'], 'f'));
  await settle();
  assert.deepEqual(shown, [['a', 'b']]);
  assert.equal(server.asked.length, 6);
  assert.equal(server.asked[5].params.offset, '5000');
  server.asked[1].answer(page(['c', 'd'], 'd'));
  await settle();
  assert.deepEqual(shown.at(-1), ['a', 'b', 'c', 'd', 'e', 'f'], 'the second and third pages shown at once, in order');
  assert.equal(shown.length, 2);
  // The fourth page is the last: the list ends once the pages before it are in; pages asked
  // past it (no jobs) are dropped.
  server.asked[3].answer(page(['g'], ''));
  await settle();
  assert.equal(server.asked.length, 7);
  assert.deepEqual(done, ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => ({ id })));
  server.asked[4].answer(page([], ''));
  server.asked[5].answer(page([], ''));
  await settle();
  assert.equal(server.asked.length, 7, 'nothing asked past the last page');
  assert.equal(shown.length, 2);
  server.restore();
});

test('a list of one page is one request; a refused page fails the whole list', async () => {
  const server = fakeListServer();
  const list = listJobs('', assert.fail);
  assert.equal(server.asked.length, 1);
  assert.deepEqual(server.asked[0].params, { page_size: '1000', view: 'summary' });
  server.asked[0].answer(page(['a'], ''));
  assert.deepEqual(await list, [{ id: 'a' }]);
  assert.equal(server.asked.length, 1, 'no request past a last first page');
  // A refused first page: nothing more asked.
  const refused = listJobs('', assert.fail);
  server.asked[1].answer({ error: { code: 'INTERNAL', message: 'disk' } }, 500);
  await assert.rejects(refused, /INTERNAL: disk/);
  assert.equal(server.asked.length, 2);
  // A refused later page fails the list; the answers of the pages under way are dropped.
  const failing = listJobs('', () => {});
  server.asked[2].answer(page(['a'], 'a'));
  await settle();
  assert.equal(server.asked.length, 7);
  server.asked[4].answer({ error: { code: 'INTERNAL', message: 'disk' } }, 500);
  await assert.rejects(failing, /INTERNAL: disk/);
  server.asked[3].answer(page(['b'], 'b'));
  await settle();
  assert.equal(server.asked.length, 7, 'nothing asked after the failure');
  server.restore();
});
