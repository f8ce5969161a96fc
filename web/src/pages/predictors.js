// Predictors: the latency predictor of each device class the fleet has (state, version,
// measurements, held-out accuracy, noise floor) and, for the class chosen in the URL, the
// evaluation of every predictor against held-out measurements with its charts.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api } from '../api.js';
import { replaceParams } from '../route.js';
import { CsvButton, DataTable } from '../table.js';
import { num, pct } from '../format.js';
import { classesOf, useDevices } from './fleet.js';
import { PredictorCharts } from './predictor_charts.js';

const html = htm.bind(h);
const enc = encodeURIComponent;

const statusColumns = [
  { key: 'device_class', label: 'device class' },
  { key: 'state', label: 'state' },
  { key: 'version', label: 'version', num: true, value: (s) => Number(s.version) },
  { key: 'kernel_measurements', label: 'kernel measurements', num: true, value: (s) => Number(s.kernel_measurements) },
  { key: 'heldout_within10', label: 'held-out within 10%', num: true, cell: (s) => pct(s.heldout_within10, 1) },
  { key: 'repeat_within10', label: 'noise floor (repeats within 10%)', num: true,
    cell: (s) => (Number(s.repeated_kernels) > 0 ? `${pct(s.repeat_within10, 1)} of ${s.repeated_kernels}` : '—') },
];
const evaluationColumns = [
  { key: 'predictor', label: 'predictor' },
  { key: 'scope', label: 'scope' },
  { key: 'count', label: 'count', num: true },
  { key: 'mape', label: 'MAPE', num: true, cell: (r) => pct(r.mape, 1) },
  { key: 'within5', label: 'within 5%', num: true, cell: (r) => pct(r.within5, 1) },
  { key: 'within10', label: 'within 10%', num: true, cell: (r) => pct(r.within10, 1) },
  { key: 'spearman', label: 'Spearman', num: true, cell: (r) => num(r.spearman, 3) },
];

export function PredictorsPage({ route }) {
  const { devices, error } = useDevices(0);
  const classes = classesOf(devices || []).map((c) => c.device_class);
  const chosen = route.params.class || classes[0] || '';
  const [statuses, setStatuses] = useState([]);
  // reply: the PredictorEvaluation (or { error }) once answered, for the charts.
  const [evaluation, setEvaluation] = useState({ rows: null, error: '', reply: null });
  useEffect(() => {
    Promise.all(classes.map((c) => api(`/api/v1/predictors/${enc(c)}`).catch((e) => ({ device_class: c, state: e.message }))))
      .then(setStatuses);
  }, [classes.join(',')]);
  useEffect(() => {
    if (!chosen) return;
    setEvaluation({ rows: null, error: '', reply: null });
    api(`/api/v1/predictors/${enc(chosen)}/evaluation`).then(
      (r) => setEvaluation({ rows: r.rows || [], error: '', reply: r }),
      (e) => setEvaluation({ rows: [], error: e.message, reply: { error: e.message } }),
    );
  }, [chosen]);
  return html`<section>
    <div class="toolbar"><h1>Predictors</h1><span class="grow"></span>
      <${CsvButton} columns=${statusColumns} rows=${statuses} name="predictors" /></div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <${DataTable} columns=${statusColumns} rows=${statuses} rowKey=${(s) => s.device_class} testid="predictors-table"
      empty=${devices ? 'no device class has a worker' : 'loading…'} maxHeight=${300} />
    ${chosen && html`<div class="toolbar"><h2>Evaluation on held-out measurements</h2>
      <select value=${chosen} onChange=${(e) => replaceParams(route, { class: e.currentTarget.value })}>
        ${classes.map((c) => html`<option value=${c}>${c}</option>`)}</select>
      <span class="grow"></span><${CsvButton} columns=${evaluationColumns} rows=${evaluation.rows || []} name="evaluation" /></div>
      ${evaluation.error ? html`<p class="muted" data-testid="evaluation-error">${evaluation.error}</p>`
        : html`<${DataTable} columns=${evaluationColumns} rows=${evaluation.rows || []} rowKey=${(r) => `${r.predictor}/${r.scope}`}
          testid="evaluation-table" empty=${evaluation.rows ? 'no rows' : 'loading…'} maxHeight=${400} />`}
      <${PredictorCharts} evaluation=${evaluation.reply} deviceClass=${chosen} />`}
  </section>`;
}
