// Compare 2-N jobs (#/compare?ids=A,B): their summaries, reward curves overlaid and
// policies side by side, from each job's report.json and policy.json (so: jobs that ended).
import { h } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import htm from 'htm';
import { api, jobPath } from '../api.js';
import { hrefOf } from '../route.js';
import { Chart } from '../chart.js';
import { CsvButton, DataTable } from '../table.js';
import { accuracyOf, budgetText, measuredSpeedup, num, pct, predictedSpeedup, speedup, stateClass } from '../format.js';

const html = htm.bind(h);

async function load(id) {
  const job = await api(jobPath(id));
  const has = (name) => (job.artifacts || []).some((a) => a.name === name);
  const get = (name) => (has(name) ? api(`${jobPath(id)}/artifacts/${name}`).catch(() => null) : null);
  const [report, policy] = await Promise.all([get('report.json'), get('policy.json')]);
  return { id, job, report, policy };
}

const layerText = (spec) => (spec ? Object.entries(spec).map(([k, v]) => (typeof v === 'number' ? `${k} ${num(v, 2)}` : v))
  .join(' · ') : 'dense fp32');

export function ComparePage({ route }) {
  const ids = (route.params.ids || '').split(',').filter(Boolean);
  const [items, setItems] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    Promise.all(ids.map(load)).then(setItems, (e) => setError(e.message));
  }, [ids.join(',')]);
  const list = items || [];
  const summary = [
    { key: 'id', label: 'job', cell: (r) => html`<a href=${hrefOf('job', r.id)}>${r.id}</a>` },
    { key: 'state', label: 'state', value: (r) => r.job.state, cell: (r) => html`<span class=${stateClass(r.job.state)}>${r.job.state}</span>` },
    { key: 'agent', label: 'agent', value: (r) => r.job.request.agent },
    { key: 'budget', label: 'budget', value: (r) => budgetText(r.job.request.budget) },
    { key: 'episodes', label: 'episodes', num: true, value: (r) => r.job.episodes_done },
    { key: 'accuracy', label: 'accuracy', num: true, value: (r) => accuracyOf(r.job), cell: (r) => pct(accuracyOf(r.job)) },
    { key: 'measured', label: 'measured speedup', num: true, value: (r) => measuredSpeedup(r.job), cell: (r) => speedup(measuredSpeedup(r.job)) },
    { key: 'predicted', label: 'predicted speedup', num: true, value: (r) => predictedSpeedup(r.job), cell: (r) => speedup(predictedSpeedup(r.job)) },
  ];
  const option = useMemo(() => ({
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 50, right: 30, top: 36, bottom: 40 },
    xAxis: { type: 'value', name: 'episode', nameLocation: 'middle', nameGap: 26, minInterval: 1 },
    yAxis: { type: 'value', name: 'reward', scale: true },
    series: list.map((r) => ({ name: r.id, type: 'line', showSymbol: false,
      data: ((r.report && r.report.episodes) || []).map((e, i) => [i + 1, e.reward]) })),
  }), [items]);
  const layers = [...new Set(list.flatMap((r) => Object.keys((r.policy && r.policy.layers) || {})))].sort((a, b) => a - b);
  const policyRows = layers.map((layer) => ({ layer: Number(layer),
    ...Object.fromEntries(list.map((r) => [r.id, layerText(r.policy && r.policy.layers[layer])])) }));
  const policyColumns = [{ key: 'layer', label: 'layer', num: true }, ...list.map((r) => ({ key: r.id, label: r.id }))];
  const points = list.reduce((n, r) => n + ((r.report && r.report.episodes) || []).length, 0);
  return html`<section>
    <div class="toolbar"><a href=${hrefOf('jobs')}>Jobs</a><span>›</span><h1>Compare ${ids.length} jobs</h1></div>
    ${ids.length < 2 && html`<p class="muted">Choose two or more jobs in the jobs table.</p>`}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <${DataTable} columns=${summary} rows=${list} rowKey=${(r) => r.id} testid="compare-table" empty=${items ? 'no jobs' : 'loading…'} maxHeight=${300} />
    <h2>Reward per episode</h2>
    <${Chart} option=${option} points=${points} testid="compare-curves" name="compare" />
    <div class="toolbar"><h2>Policies per layer</h2><span class="muted">layers none of them compresses are left out</span>
      <span class="grow"></span><${CsvButton} columns=${policyColumns} rows=${policyRows} name="compare-policies" /></div>
    <${DataTable} columns=${policyColumns} rows=${policyRows} rowKey=${(r) => r.layer} testid="compare-policies" empty="no policies yet" maxHeight=${400} />
  </section>`;
}
