// How numbers and states read on every page. Missing measurements show as "—", never as 0.
export const DASH = '—';
export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'BUDGET_NOT_MET']);
export const JOB_STATES = ['QUEUED', 'PREPARING', 'SEARCHING', 'VERIFYING', 'SUCCEEDED', 'FAILED', 'CANCELLED',
  'BUDGET_NOT_MET'];

export const pct = (x, digits = 2) => (x > 0 ? `${(100 * x).toFixed(digits)}%` : DASH);
export const num = (x, digits = 3) => (Number.isFinite(x) ? Number(x).toFixed(digits) : DASH);
export const us = (x) => (x > 0 ? `${x.toFixed(x < 100 ? 1 : 0)} µs` : DASH);
export const ratio = (a, b) => (a > 0 && b > 0 ? a / b : 0);
export const speedup = (x) => (x > 0 ? `${x.toFixed(2)}x` : DASH);

export function time(value) {
  if (!value) return DASH;
  const d = /^\d+$/.test(String(value)) ? new Date(Number(value)) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export const budgetText = (b) => (b && b.kind ? `${b.kind} ${num(b.ratio, 2)}x` : DASH);

// The measured speedup of a job's result (dense / result, both measured), 0 when unmeasured.
export const measuredSpeedup = (job) => ratio(job.dense_measured_latency_us, job.best_measured_latency_us);
export const predictedSpeedup = (job) => ratio(job.dense_predicted_latency_us, job.best_predicted_latency_us);
// The accuracy the user downloads: the exported model's (its test accuracy when a test set
// was named), else the search's best estimate.
export function accuracyOf(job) {
  if (Number(job.test_samples) > 0 && job.test_accuracy > 0) return job.test_accuracy;
  return job.exported_accuracy > 0 ? job.exported_accuracy : job.best_accuracy;
}

export const stateClass = (state) => `state state-${String(state || '').toLowerCase()}`;
export const short = (sha) => (sha ? sha.slice(0, 12) : DASH);
