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

// policy: policy.json ({version, layers: {INDEX: {pattern, sparsity, precision, ...}}}).
export function PolicyTable({ policy }) {
  const layers = Object.entries(policy.layers || {}).sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([layer, spec]) => ({ layer: Number(layer), ...spec }));
  const keys = [...new Set(layers.flatMap((l) => Object.keys(l)).filter((k) => k !== 'layer'))];
  const columns = [{ key: 'layer', label: 'layer', num: true },
    ...keys.map((k) => ({ key: k, label: k, num: k === 'sparsity', value: (r) => (r[k] === undefined ? '' : valueText(r[k])) }))];
  return html`<div>
    <div class="toolbar"><h2>Policy per layer</h2><span class="muted">layers not listed stay dense fp32</span>
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

export function VerificationTable({ report }) {
  const rows = report.verification || [];
  return html`<div>
    <div class="toolbar"><h2>Verification on ${report.verification_device_class || 'a worker'}</h2>
      <span class="muted">predicted vs measured, per policy and run</span><span class="grow"></span>
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
