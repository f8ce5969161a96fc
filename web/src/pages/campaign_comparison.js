// A campaign run compared with the previous night of its owner (GET
// /api/v1/campaigns/runs/RUN/comparison: the JSON of `acs campaign report --format json`,
// computed by the same code, docs/campaigns.md "The report"): the verdict counts, the
// notices, the geomean measured speedup and mean accuracy loss per device class and agent
// (naming the cells whose re-measured speedup they use), and every cell with its verdict,
// most severe first, regressions highlighted.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api } from '../api.js';
import { hrefOf } from '../route.js';
import { CsvButton, DataTable } from '../table.js';
import { DASH, num, speedup } from '../format.js';

const html = htm.bind(h);
const VERDICTS = ['regressed', 'failed', 'missing', 'new', 'improved', 'unchanged', 'pending'];
const METRICS = [
  ['measured_speedup', 'measured speedup', (x) => speedup(x)],
  ['test_accuracy', 'test accuracy', (x) => num(x, 4)],
  ['validation_accuracy', 'compressed.pt accuracy', (x) => num(x, 4)],
  ['predicted_speedup', 'predicted speedup', (x) => speedup(x)],
];

const verdictClass = (v) => (v === 'regressed' || v === 'failed' ? 'state state-failed'
  : v === 'improved' ? 'state state-succeeded' : 'state');

// "1.90x → 1.60x (−15.8%) REGRESSED" of one metric of a cell; "" when neither is known.
export function changeText(m, fmt) {
  if (!m || (m.baseline === null && m.today === null)) return '';
  let s = `${m.baseline === null ? DASH : fmt(m.baseline)} → ${m.today === null ? DASH : fmt(m.today)}`;
  if (m.relative !== null) s += ` (${m.relative >= 0 ? '+' : ''}${(100 * m.relative).toFixed(1)}%)`;
  if (m.remeasured !== null && m.remeasured !== undefined) s += `, re-measured ${fmt(m.remeasured)}`;
  if (m.flagged) s += m.flagged === 'regressed' ? ' REGRESSED' : ' improved';
  return s;
}

const jobLink = (id) => (id ? html`<a href=${hrefOf('job', id)}>${id}</a>` : DASH);

const cellColumns = [
  { key: 'key', label: 'cell' },
  { key: 'verdict', label: 'verdict', value: (c) => VERDICTS.indexOf(c.verdict),
    cell: (c) => html`<span class=${verdictClass(c.verdict)}>${c.verdict}</span>` },
  ...METRICS.map(([key, label, fmt]) => ({ key, label: `${label} (baseline → today)`,
    value: (c) => changeText((c.metrics || {})[key], fmt) })),
  { key: 'remeasure', label: 're-measure', value: (c) => (c.remeasure ? c.remeasure.outcome : '') },
  { key: 'job_id', label: 'job', value: (c) => c.job_id, cell: (c) => jobLink(c.job_id) },
  { key: 'baseline_job_id', label: 'baseline job', value: (c) => c.baseline_job_id, cell: (c) => jobLink(c.baseline_job_id) },
  { key: 'error', label: 'error' },
];

const groupColumns = [
  { key: 'device_class', label: 'device class' },
  { key: 'agent', label: 'agent' },
  { key: 'cells', label: 'cells', num: true },
  { key: 'geomean', label: 'geomean measured speedup', num: true, value: (g) => speedup(g.geomean_measured_speedup) },
  { key: 'baseline_geomean', label: 'baseline', num: true, value: (g) => speedup(g.baseline_geomean_measured_speedup) },
  { key: 'loss', label: 'mean accuracy loss', num: true, value: (g) => num(g.mean_accuracy_loss, 4) },
  { key: 'baseline_loss', label: 'baseline', num: true, value: (g) => num(g.baseline_mean_accuracy_loss, 4) },
  { key: 'remeasured', label: 'speedup re-measured in', value: (g) => (g.remeasured_cells || []).join(', ') || DASH },
];

export function RunComparison({ runId }) {
  const [state, setState] = useState({ report: null, error: '' });
  useEffect(() => {
    let live = true;
    api(`/api/v1/campaigns/runs/${encodeURIComponent(runId)}/comparison`)
      .then((report) => live && setState({ report, error: '' }), (e) => live && setState({ report: null, error: e.message }));
    return () => { live = false; };
  }, [runId]);
  const r = state.report;
  if (!r) {
    return html`<div data-testid="comparison">${state.error
      ? html`<p class="error">comparison with the previous night: ${state.error}</p>` : html`<p class="muted">comparing…</p>`}</div>`;
  }
  const counts = VERDICTS.filter((v) => r.counts[v] > 0).map((v) => `${r.counts[v]} ${v}`).join(', ');
  const against = r.baseline ? `against ${r.baseline.date} (${r.baseline.id})${r.spec_changed ? ', spec changed since' : ''}`
    : 'no earlier run: nothing to compare with';
  const bad = r.exit_code !== 0;
  return html`<div data-testid="comparison">
    <div class="toolbar"><h2>Compared with the previous night</h2><span class="muted">${against}</span></div>
    <p class=${bad ? 'verdict bad' : 'verdict ok'} data-testid="comparison-summary">${counts || 'no cells'}${r.gated_regression
      ? ' — a gated metric regressed' : ''}.</p>
    ${r.notices.length > 0 && html`<ul class="log">${r.notices.map((n) => html`<li>${n}</li>`)}</ul>`}
    <${DataTable} columns=${groupColumns} rows=${r.groups} rowKey=${(g) => `${g.device_class}/${g.agent}`}
      testid="comparison-groups" maxHeight=${200} />
    <div class="toolbar"><h3>Cells, most severe first</h3>
      <span class="muted">flagged beyond ${(100 * r.compare.relative_floor).toFixed(0)}% and ${r.compare.noise_multiplier}x
        the repeat noise; gated: ${r.compare.gate.join(', ')}</span>
      <span class="grow"></span><${CsvButton} columns=${cellColumns} rows=${r.cells} name=${`comparison-${r.run.id}`} /></div>
    <${DataTable} columns=${cellColumns} rows=${r.cells} rowKey=${(c) => c.key} testid="comparison-table" empty="no cells" />
  </div>`;
}
