// Campaigns: the nightly campaign runs the token may see (GET /api/v1/campaigns/runs,
// newest date first, filtered by campaign in the URL) and one run's cells (GET
// /api/v1/campaigns/runs/RUN), each with its job's state and results; cells that did not
// end with a result are highlighted, as are the run's failed and unfinished cells in its
// summary, and the run compared with the previous night (./campaign_comparison.js).
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api, jobPath } from '../api.js';
import { RunComparison } from './campaign_comparison.js';
import { hrefOf, replaceParams } from '../route.js';
import { CsvButton, DataTable } from '../table.js';
import { DASH, TERMINAL, measuredSpeedup, pct, predictedSpeedup, short, speedup, stateClass, time } from '../format.js';

const html = htm.bind(h);
const enc = encodeURIComponent;
const JOBS_AT_ONCE = 6;

// A cell's state: its job's, or PENDING without a job.
const cellState = (c) => (c.job_id ? c.state : 'PENDING');

// Counts of a run's cells: with a result, failed (failed, cancelled, budget not met), unfinished.
export function cellCounts(cells) {
  const counts = { cells: cells.length, results: 0, failed: 0, running: 0, pending: 0 };
  for (const c of cells) {
    const s = cellState(c);
    if (s === 'PENDING') counts.pending += 1;
    else if (!TERMINAL.has(s)) counts.running += 1;
    else if (s === 'SUCCEEDED') counts.results += 1;
    else counts.failed += 1;
  }
  return counts;
}

const runColumns = [
  { key: 'date', label: 'date', cell: (r) => html`<a href=${hrefOf('campaign', r.id)}>${r.date}</a>` , value: (r) => r.date },
  { key: 'campaign', label: 'campaign' },
  { key: 'owner', label: 'owner' },
  { key: 'cells', label: 'cells', num: true, value: (r) => r.cells.length },
  { key: 'results', label: 'succeeded', num: true, value: (r) => cellCounts(r.cells).results },
  { key: 'failed', label: 'failed / cancelled / over budget', num: true, value: (r) => cellCounts(r.cells).failed,
    cell: (r) => { const n = cellCounts(r.cells).failed; return n ? html`<span class="state state-failed">${n}</span>` : '0'; } },
  { key: 'unfinished', label: 'running / pending', num: true,
    value: (r) => { const c = cellCounts(r.cells); return c.running + c.pending; } },
  { key: 'spec_hash', label: 'spec', value: (r) => short(r.spec_hash) },
  { key: 'created', label: 'created', value: (r) => time(r.created) },
  { key: 'id', label: 'run' },
];

export function CampaignsPage({ route }) {
  const campaign = route.params.campaign || '';
  const [state, setState] = useState({ runs: null, error: '' });
  useEffect(() => {
    let live = true;
    api(`/api/v1/campaigns/runs?page_size=200${campaign ? `&campaign=${enc(campaign)}` : ''}`)
      .then((r) => live && setState({ runs: r.runs || [], error: '' }), (e) => live && setState({ runs: [], error: e.message }));
    return () => { live = false; };
  }, [campaign]);
  const runs = state.runs || [];
  return html`<section>
    <div class="toolbar"><h1>Campaigns</h1>
      <span class="muted">${state.runs ? `${runs.length} runs, newest first` : 'loading…'}</span>
      <input placeholder="campaign name" value=${campaign} data-testid="campaign-filter"
        onChange=${(e) => replaceParams(route, { campaign: e.currentTarget.value.trim() })} />
      <span class="grow"></span><${CsvButton} columns=${runColumns} rows=${runs} name="campaign-runs" /></div>
    ${state.error && html`<p class="error" role="alert">${state.error}</p>`}
    <${DataTable} columns=${runColumns} rows=${runs} rowKey=${(r) => r.id} testid="runs-table"
      empty="no campaign run (acs campaign run SPEC starts one)" />
  </section>`;
}

// The jobs of `ids`, a few at a time; {id: job or {error}}.
function useJobs(ids) {
  const [jobs, setJobs] = useState({});
  const key = ids.join(',');
  useEffect(() => {
    let live = true;
    const queue = [...ids];
    const found = {};
    const worker = async () => {
      while (live && queue.length) {
        const id = queue.shift();
        found[id] = await api(jobPath(id)).catch((e) => ({ error: e.message }));
        if (live) setJobs({ ...found });
      }
    };
    Promise.all(Array.from({ length: JOBS_AT_ONCE }, worker));
    return () => { live = false; };
  }, [key]);
  return jobs;
}

function cellColumns(jobs) {
  const job = (c) => jobs[c.job_id] || {};
  return [
    { key: 'key', label: 'cell' },
    { key: 'state', label: 'state', value: cellState,
      cell: (c) => html`<span class=${stateClass(cellState(c))}>${cellState(c)}</span>` },
    { key: 'job_id', label: 'job', cell: (c) => (c.job_id ? html`<a href=${hrefOf('job', c.job_id)}>${c.job_id}</a>` : DASH) },
    { key: 'measured_speedup', label: 'measured speedup', num: true, value: (c) => measuredSpeedup(job(c)) || '',
      cell: (c) => speedup(measuredSpeedup(job(c))) },
    { key: 'predicted_speedup', label: 'predicted speedup', num: true, value: (c) => predictedSpeedup(job(c)) || '',
      cell: (c) => speedup(predictedSpeedup(job(c))) },
    { key: 'validation_accuracy', label: 'compressed.pt accuracy', num: true, value: (c) => job(c).exported_accuracy || '',
      cell: (c) => pct(job(c).exported_accuracy) },
    { key: 'test_accuracy', label: 'test accuracy (dense)', num: true, value: (c) => job(c).test_accuracy || '',
      cell: (c) => (Number(job(c).test_samples) > 0 ? `${pct(job(c).test_accuracy)} (${pct(job(c).dense_test_accuracy)})` : DASH) },
    { key: 'note', label: 'note / error', value: (c) => [c.note, job(c).error].filter(Boolean).join('; ') },
  ];
}

export function CampaignRunPage({ route }) {
  const [state, setState] = useState({ run: null, error: '' });
  useEffect(() => {
    let live = true;
    api(`/api/v1/campaigns/runs/${enc(route.id)}`)
      .then((run) => live && setState({ run, error: '' }), (e) => live && setState({ run: null, error: e.message }));
    return () => { live = false; };
  }, [route.id]);
  const run = state.run;
  const cells = run ? run.cells || [] : [];
  const jobs = useJobs(cells.map((c) => c.job_id).filter(Boolean));
  if (!run) {
    return html`<section><h1>${route.id}</h1>${state.error ? html`<p class="error" role="alert">${state.error}</p>` : html`<p>loading…</p>`}</section>`;
  }
  const counts = cellCounts(cells);
  const bad = counts.failed + counts.running + counts.pending;
  const summary = `${counts.results} of ${counts.cells} cells succeeded` +
    (counts.failed ? `, ${counts.failed} failed, cancelled or over budget` : '') +
    (counts.running ? `, ${counts.running} still running` : '') + (counts.pending ? `, ${counts.pending} never submitted` : '');
  const columns = cellColumns(jobs);
  const notOk = cells.filter((c) => cellState(c) !== 'SUCCEEDED');
  return html`<section>
    <div class="toolbar"><a href=${hrefOf('campaigns', '', { campaign: run.campaign })}>Campaigns</a><span>›</span>
      <h1>${run.campaign} ${run.date}</h1><span class="muted">${run.id} · ${run.owner} · spec ${short(run.spec_hash)} · created ${time(run.created)}</span></div>
    <p class=${bad ? 'verdict bad' : 'verdict ok'} data-testid="run-summary">${summary}.</p>
    ${notOk.length > 0 && html`<ul class="log" data-testid="run-problems">
      ${notOk.map((c) => html`<li><b>${c.key}</b> <span class=${stateClass(cellState(c))}>${cellState(c)}</span>
        ${[c.note, (jobs[c.job_id] || {}).error].filter(Boolean).join('; ')}</li>`)}</ul>`}
    <${RunComparison} runId=${run.id} />
    <div class="toolbar"><h2>Cells</h2><span class="grow"></span><${CsvButton} columns=${columns} rows=${cells} name=${`campaign-${run.id}`} /></div>
    <${DataTable} columns=${columns} rows=${cells} rowKey=${(c) => c.key} testid="cells-table" empty="no cells" />
  </section>`;
}
