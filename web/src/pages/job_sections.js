// The job page's tables: the budget verdict (stated plainly, never overstated), the
// per-layer policy, the verification runs and the artifacts.
import { h } from 'preact';
import htm from 'htm';
import { downloadArtifact } from '../api.js';
import { CsvButton, DataTable } from '../table.js';
import { DASH, TERMINAL, num, pct, ratio, speedup, us } from '../format.js';

const html = htm.bind(h);

function exportedEpisode(report) {
  return (report.episodes || []).find((e) => e.policy_hash === report.exported_policy_hash);
}

// One sentence on the budget, from the job's state and its report's budget_outcome.
export function budgetVerdict(job, report) {
  const budget = job.request.budget || {};
  if (job.state === 'BUDGET_NOT_MET') {
    return { ok: false, text: `Budget NOT met: ${job.error || 'the exported policy measured over its budget'}` };
  }
  if (job.state === 'FAILED') return { ok: false, text: `The job failed: ${job.error || 'no reason given'}` };
  if (job.state === 'CANCELLED') return { ok: null, text: 'Cancelled: the budget was not verified.' };
  if (!TERMINAL.has(job.state) || !report) return { ok: null, text: `Budget ${budget.kind} ${budget.ratio}x: not verified yet.` };
  const outcome = report.budget_outcome || {};
  if (budget.kind === 'latency') {
    if (outcome.unmeasured) return { ok: false, text: `Budget NOT verified: ${outcome.message || 'no run was measured'}` };
    const runs = outcome.runs ? ` (median of ${outcome.runs} runs, ${num(outcome.ratio_min, 2)}–${num(outcome.ratio_max, 2)}x)` : '';
    const line = `measured ${num(outcome.measured_ratio, 2)}x of the dense model's latency${runs}, ` +
      `budget ${num(outcome.budget_ratio, 2)}x (allowed ${num(outcome.allowed_ratio, 2)}x)`;
    return outcome.met ? { ok: true, text: `Latency budget met as measured: ${line}.` }
      : { ok: false, text: `Latency budget NOT met: ${line}.` };
  }
  const episode = exportedEpisode(report);
  const cost = episode ? `${num(episode.cost_ratio, 2)}x` : DASH;
  return { ok: true, text: `${budget.kind} budget ${num(budget.ratio, 2)}x held by construction: the exported policy ` +
    `counts ${cost} of the dense model's ${budget.kind}. This budget says nothing about latency; see the measured speedup.` };
}

export function BudgetVerdict({ job, report }) {
  const v = budgetVerdict(job, report);
  const cls = v.ok === true ? 'verdict ok' : v.ok === false ? 'verdict bad' : 'verdict';
  return html`<p class=${cls} data-testid="budget-verdict">${v.text}</p>`;
}

const valueText = (v) => (Array.isArray(v) ? v.join('x') : typeof v === 'number' ? num(v, 3) : String(v));

const flopsText = (x) => (Number.isFinite(x) ? (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : String(Math.round(x))) : DASH);

// policy: policy.json ({version, layers: {NAME: {pattern, sparsity, precision, ...}}});
// report: report.json, whose "layers" (every layer in the model's order) carry FLOPs dense
// and as compressed and, for latency budgets, the predicted latency of each.
export function policyRows(policy, report) {
  const specs = (policy && policy.layers) || {};
  const costs = (report && report.layers) || [];
  if (!costs.length) {
    return Object.entries(specs).map(([layer, spec]) => ({ layer, ...spec }));
  }
  return costs.map((c) => ({ layer: c.name, ...(specs[c.name] || {}), type: c.type, flops_dense: c.flops_dense,
    flops: c.flops, predicted_us: c.predicted_us, dense_predicted_us: c.dense_predicted_us, listed: !!specs[c.name] }));
}

const COST_KEYS = new Set(['layer', 'type', 'flops_dense', 'flops', 'predicted_us', 'dense_predicted_us', 'listed']);

export function PolicyTable({ policy, report }) {
  const layers = policyRows(policy, report);
  const keys = [...new Set(layers.flatMap((l) => Object.keys(l)).filter((k) => !COST_KEYS.has(k)))];
  const hasCosts = layers.some((l) => l.flops_dense !== undefined);
  const hasLatency = layers.some((l) => l.predicted_us !== undefined);
  const columns = [{ key: 'layer', label: 'layer' },
    ...(hasCosts ? [{ key: 'type', label: 'type' }] : []),
    ...keys.map((k) => ({ key: k, label: k, num: k === 'sparsity',
      value: (r) => (r[k] === undefined ? (hasCosts && !r.listed && k === 'pattern' ? 'dense' : '') : valueText(r[k])) })),
    ...(hasCosts ? [
      { key: 'flops_dense', label: 'FLOPs dense', num: true, cell: (r) => flopsText(r.flops_dense) },
      { key: 'flops', label: 'FLOPs compressed', num: true, cell: (r) => flopsText(r.flops) },
      { key: 'flops_ratio', label: 'FLOPs kept', num: true, value: (r) => ratio(r.flops, r.flops_dense),
        cell: (r) => (r.flops_dense > 0 ? `${(100 * r.flops / r.flops_dense).toFixed(1)}%` : DASH) },
    ] : []),
    ...(hasLatency ? [
      { key: 'dense_predicted_us', label: 'predicted dense', num: true, cell: (r) => us(r.dense_predicted_us) },
      { key: 'predicted_us', label: 'predicted', num: true, cell: (r) => us(r.predicted_us) },
      { key: 'predicted_speedup', label: 'predicted speedup', num: true,
        value: (r) => ratio(r.dense_predicted_us, r.predicted_us), cell: (r) => speedup(ratio(r.dense_predicted_us, r.predicted_us)) },
    ] : [])];
  const note = !hasCosts ? 'layers not listed stay dense fp32'
    : hasLatency ? 'every layer; FLOPs and latency predicted per sample by the job\'s calibrated predictor (the model\'s overhead outside its layers not included)'
      : 'every layer; no predicted latency: the budget is not a latency budget';
  return html`<div>
    <div class="toolbar"><h2>Policy per layer</h2><span class="muted" data-testid="policy-note">${note}</span>
      <span class="grow"></span><${CsvButton} columns=${columns} rows=${layers} name="policy" /></div>
    <${DataTable} columns=${columns} rows=${layers} rowKey=${(r) => r.layer} testid="policy-table"
      empty="every layer dense fp32" maxHeight=${400} />
  </div>`;
}

const verificationColumns = [
  { key: 'policy', label: 'policy', value: (v) => `#${v.rank + 1} ${v.policy_hash}` },
  { key: 'run', label: 'run', num: true, value: (v) => v.run + 1 },
  { key: 'accuracy', label: 'accuracy', num: true, cell: (v) => pct(v.accuracy) },
  { key: 'predicted_us', label: 'predicted', num: true, cell: (v) => us(v.predicted_us) },
  { key: 'measured_us', label: 'measured', num: true, cell: (v) => us(v.measured_us) },
  { key: 'dense_measured_us', label: 'dense measured', num: true, cell: (v) => us(v.dense_measured_us) },
  { key: 'speedup', label: 'measured speedup', num: true, value: (v) => ratio(v.dense_measured_us, v.measured_us),
    cell: (v) => speedup(ratio(v.dense_measured_us, v.measured_us)) },
  { key: 'error_pct', label: 'predicted vs measured', num: true,
    value: (v) => (v.predicted_us > 0 && v.measured_us > 0 ? (v.predicted_us / v.measured_us - 1) * 100 : ''),
    cell: (v) => (v.predicted_us > 0 && v.measured_us > 0 ? `${((v.predicted_us / v.measured_us - 1) * 100).toFixed(1)}%` : DASH) },
  { key: 'stock_us', label: 'compressed.pt (PyTorch)', num: true, cell: (v) => us(v.stock_us) },
  { key: 'acs_file_us', label: 'compressed.acs.pt', num: true, cell: (v) => us(v.acs_file_us) },
  { key: 'error', label: 'error' },
];

// A VERIFIED event's structured measurement (JobEvent.verification) as a row of the table,
// named as report.json's "verification" names them.
export function verificationRow(v, seq) {
  return { rank: v.rank, run: v.run, policy_hash: v.policy_hash, accuracy: v.accuracy, predicted_us: v.predicted_latency_us,
    measured_us: v.measured_latency_us, dense_measured_us: v.dense_measured_latency_us,
    stock_us: v.stock_measured_latency_us, acs_file_us: v.acs_file_measured_latency_us, error: v.error, task_id: `event-${seq}` };
}

// rows: report.json's verification once the job wrote it, else the VERIFIED events so far.
export function VerificationTable({ report, live = [] }) {
  const fromReport = report && Array.isArray(report.verification);
  const rows = fromReport ? report.verification : live;
  const where = (report && report.verification_device_class) || 'a worker';
  return html`<div>
    <div class="toolbar"><h2>Verification on ${where}</h2>
      <span class="muted">predicted vs measured, per policy and run${fromReport ? '' : ' (as measured so far)'}</span><span class="grow"></span>
      <${CsvButton} columns=${verificationColumns} rows=${rows} name="verification" /></div>
    <${DataTable} columns=${verificationColumns} rows=${rows} rowKey=${(v) => `${v.rank}-${v.run}-${v.task_id}`}
      testid="verification-table" empty="no policy was measured" maxHeight=${400} />
  </div>`;
}

export function Artifacts({ job, onError }) {
  const artifacts = job.artifacts || [];
  if (!artifacts.length) return html`<p class="muted">No artifacts yet.</p>`;
  return html`<ul class="artifacts" data-testid="artifacts">
    ${artifacts.map((a) => html`<li><button class="small" onClick=${() => downloadArtifact(job.id, a.name).catch(onError)}>
      download</button> <code>${a.name}</code> <span class="muted">${Number(a.bytes).toLocaleString()} bytes · sha256 ${a.sha256.slice(0, 12)}</span></li>`)}
  </ul>`;
}
