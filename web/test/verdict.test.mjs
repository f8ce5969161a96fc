// The job page's budget verdict (src/pages/job_sections.js) on every outcome a job can
// end with: it says NOT met or not verified whenever the measurements do not show it met.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { budgetVerdict } from '../src/pages/job_sections.js';

const job = (state, kind = 'latency', error = '') => ({ state, error, request: { budget: { kind, ratio: 0.5 } } });
const latencyReport = (outcome) => ({ budget_outcome: { kind: 'latency', budget_ratio: 0.5, allowed_ratio: 0.525, ...outcome } });

test('a job that ended BUDGET_NOT_MET says NOT met, with its reason', () => {
  const v = budgetVerdict(job('BUDGET_NOT_MET', 'latency', 'measured 0.61x of dense, over 0.50x'), latencyReport({ met: false }));
  assert.equal(v.ok, false);
  assert.match(v.text, /^Budget NOT met: measured 0\.61x/);
});

test('a latency budget is met only as measured, with the median and the allowance', () => {
  const met = budgetVerdict(job('SUCCEEDED'), latencyReport({ met: true, measured_ratio: 0.48, runs: 3, ratio_min: 0.47, ratio_max: 0.5 }));
  assert.equal(met.ok, true);
  assert.match(met.text, /met as measured: measured 0\.48x .*median of 3 runs, 0\.47–0\.50x.*budget 0\.50x \(allowed 0\.53x\)/);
  const missed = budgetVerdict(job('SUCCEEDED'), latencyReport({ met: false, measured_ratio: 0.6 }));
  assert.equal(missed.ok, false);
  assert.match(missed.text, /NOT met/);
  const unmeasured = budgetVerdict(job('SUCCEEDED'), latencyReport({ met: false, unmeasured: true, message: 'no run' }));
  assert.equal(unmeasured.ok, false);
  assert.match(unmeasured.text, /NOT verified: no run/);
});

test('running, cancelled and failed jobs claim nothing', () => {
  assert.equal(budgetVerdict(job('SEARCHING'), null).ok, null);
  assert.match(budgetVerdict(job('VERIFYING'), null).text, /not verified yet/);
  assert.match(budgetVerdict(job('CANCELLED'), null).text, /not verified/);
  assert.equal(budgetVerdict(job('FAILED', 'latency', 'out of memory'), null).ok, false);
  assert.match(budgetVerdict(job('SUCCEEDED'), null).text, /not verified yet/);  // report not read yet
});

test('a FLOPs budget holds by construction and says nothing about latency', () => {
  const report = { budget_outcome: { met: true }, exported_policy_hash: 'h2',
    episodes: [{ policy_hash: 'h1', cost_ratio: 0.3 }, { policy_hash: 'h2', cost_ratio: 0.47 }] };
  const v = budgetVerdict(job('SUCCEEDED', 'flops'), report);
  assert.equal(v.ok, true);
  assert.match(v.text, /flops budget 0\.50x held by construction: .* 0\.47x .*says nothing about latency/);
});
