// One job: its summary, the live curve from the event stream (resumed after the last event
// on a dropped connection), and once it ended the Pareto front, policy, verification and
// artifacts from its report; the log of every event but the episodes.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api, jobPath, readEvents } from '../api.js';
import { hrefOf } from '../route.js';
import {
  DASH, TERMINAL, budgetText, measuredSpeedup, pct, predictedSpeedup, speedup, stateClass, time, us,
} from '../format.js';
import { CurveChart, ParetoChart } from './job_charts.js';
import { Artifacts, BudgetVerdict, PolicyTable, VerificationTable, verificationRow } from './job_sections.js';

const html = htm.bind(h);
const FLUSH_MS = 250;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Follows the job's events; returns {job, points, verified, log, error} (verified: the
// VERIFIED events' structured measurements as verification rows).
function useJobEvents(id) {
  const [view, setView] = useState({ job: null, points: [], verified: [], log: [], error: '' });
  useEffect(() => {
    const abort = new AbortController();
    let job = null, points = [], verified = [], log = [], error = '', dirty = true;
    const flush = () => {
      if (dirty) setView({ job, points: [...points], verified: [...verified], log: [...log], error });
      dirty = false;
    };
    const timer = setInterval(flush, FLUSH_MS);
    const onEvent = ({ seq, kind, event }) => {
      dirty = true;
      if (event.job) job = event.job;
      if (kind === 'episode') {
        points.push({ n: points.length + 1, episode: event.episode, reward: event.reward, accuracy: event.accuracy,
          cost_ratio: event.cost_ratio });
      } else {
        if (kind === 'verified' && event.verification) verified.push(verificationRow(event.verification, seq));
        log.push({ seq, kind, state: event.state, message: event.message, time: event.time_ms });
      }
    };
    (async () => {
      try {
        job = await api(jobPath(id));
        dirty = true;
      } catch (e) {
        error = e.message;
        flush();
        return;
      }
      let after = 0;
      while (!abort.signal.aborted) {
        try {
          after = await readEvents(id, after, onEvent, abort.signal);
          error = '';
        } catch (e) {
          if (abort.signal.aborted) break;
          error = `event stream: ${e.message} (retrying)`;
          dirty = true;
          if (e.status === 401 || e.status === 403 || e.status === 404) break;
        }
        if (job && TERMINAL.has(job.state)) break;
        await sleep(2000);
      }
      flush();
    })();
    return () => {
      abort.abort();
      clearInterval(timer);
    };
  }, [id]);
  return view;
}

// report.json and policy.json once the job has them.
function useArtifactsJson(job) {
  const [docs, setDocs] = useState({ report: null, policy: null });
  const names = job ? (job.artifacts || []).map((a) => `${a.name}:${a.sha256}`).join(',') : '';
  useEffect(() => {
    if (!job) return undefined;
    let live = true;
    const get = (name) => ((job.artifacts || []).some((a) => a.name === name)
      ? api(`${jobPath(job.id)}/artifacts/${name}`).catch(() => null) : Promise.resolve(null));
    Promise.all([get('report.json'), get('policy.json')]).then(([report, policy]) => live && setDocs({ report, policy }));
    return () => { live = false; };
  }, [names]);
  return docs;
}

function Summary({ job }) {
  const r = job.request;
  const rows = [
    ['owner', job.owner], ['agent', r.agent], ['budget', budgetText(r.budget)], ['device class', r.device_class || DASH],
    ['dataset', r.dataset_name || (r.dataset_sha256 ? `upload ${r.dataset_sha256.slice(0, 12)}` : DASH)],
    ['model', `${r.model_sha256.slice(0, 12)} · input ${(r.input_shape || []).join('x')}`],
    ['episodes', `${job.episodes_done} / ${r.episodes || '?'}`],
    ['time limit', Number(r.time_limit_seconds) > 0 ? `${r.time_limit_seconds} s of running` : 'the server\'s'],
    ['accuracy (search best / dense)', `${pct(job.best_accuracy)} / ${pct(job.dense_accuracy)}`],
    ['compressed.pt accuracy', pct(job.exported_accuracy)],
    ...(Number(job.test_samples) > 0 ? [['test accuracy (dense)', `${pct(job.test_accuracy)} (${pct(job.dense_test_accuracy)}) on ${job.test_samples}`]] : []),
    ['latency measured (dense)', `${us(job.best_measured_latency_us)} (${us(job.dense_measured_latency_us)})`],
    ['measured speedup', speedup(measuredSpeedup(job))],
    ['latency predicted (dense)', `${us(job.best_predicted_latency_us)} (${us(job.dense_predicted_latency_us)})`],
    ['predicted speedup', speedup(predictedSpeedup(job))],
    ['compressed.pt in PyTorch / compressed.acs.pt', `${us(job.stock_measured_latency_us)} / ${us(job.acs_file_measured_latency_us)}`],
    ['created / updated', `${time(job.created)} / ${time(job.updated)}`],
  ];
  return html`<dl class="summary" data-testid="job-summary">
    ${rows.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}
  </dl>`;
}

// The whole report.json, rendered only when opened (it holds every episode's policy).
function RawReport({ report }) {
  const [open, setOpen] = useState(false);
  return html`<details onToggle=${(e) => setOpen(e.currentTarget.open)}>
    <summary>report.json as the job wrote it</summary>
    ${open && html`<pre class="report">${JSON.stringify(report, null, 2)}</pre>`}
  </details>`;
}

export function JobPage({ route }) {
  const { job, points, verified, log, error } = useJobEvents(route.id);
  const { report, policy } = useArtifactsJson(job);
  const [actionError, setActionError] = useState('');
  if (!job) {
    return html`<section><h1>${route.id}</h1>${error ? html`<p class="error" role="alert">${error}</p>` : html`<p>loading…</p>`}</section>`;
  }
  const cancel = () => api(`${jobPath(job.id)}/cancel`, { method: 'POST' }).catch((e) => setActionError(e.message));
  return html`<section>
    <div class="toolbar">
      <a href=${hrefOf('jobs')}>Jobs</a><span>›</span><h1>${job.id}</h1>
      <span class=${stateClass(job.state)} data-testid="job-state">${job.state}</span>
      ${job.eta_seconds > 0 && !TERMINAL.has(job.state) && html`<span class="muted">about ${Math.ceil(job.eta_seconds)} s left</span>`}
      <span class="grow"></span>
      ${!TERMINAL.has(job.state) && html`<button class="danger" onClick=${cancel} data-testid="cancel-job">Cancel job</button>`}
    </div>
    ${(error || actionError) && html`<p class="error" role="alert">${actionError || error}</p>`}
    <${BudgetVerdict} job=${job} report=${report} />
    ${job.error && job.state !== 'BUDGET_NOT_MET' && html`<p class="error">${job.error}</p>`}
    <${Summary} job=${job} />
    <h2>Reward and accuracy per episode <span class="muted" data-testid="curve-count">${points.length} episodes</span></h2>
    <${CurveChart} points=${points} budget=${job.request.budget} />
    ${report && html`<h2>Pareto front</h2><${ParetoChart} report=${report} />`}
    ${policy && html`<${PolicyTable} policy=${policy} report=${report} />`}
    ${(report || verified.length > 0) && html`<${VerificationTable} report=${report} live=${verified} />`}
    ${report && html`<${RawReport} report=${report} />`}
    <h2>Artifacts</h2>
    <${Artifacts} job=${job} onError=${(e) => setActionError(e.message)} />
    <h2>Log</h2>
    <ol class="log" data-testid="job-log">
      ${log.map((e) => html`<li key=${e.seq}><span class="muted">${time(e.time)}</span> <b>${e.kind}</b>
        ${e.state && e.state !== 'JOB_STATE_UNSPECIFIED' ? html` <span class=${stateClass(e.state)}>${e.state}</span>` : ''} ${e.message}</li>`)}
    </ol>
  </section>`;
}
