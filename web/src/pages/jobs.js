// Jobs: every job the caller may see, filtered (state on the server, text here), sorted and
// searched with the choices in the URL; cancel, and a link to each job's page.
import { h } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import htm from 'htm';
import { api, downloadArtifact, jobPath, listJobs } from '../api.js';
import { hrefOf, replaceParams } from '../route.js';
import { CsvButton, DataTable, sortRows } from '../table.js';
import {
  JOB_STATES, TERMINAL, accuracyOf, budgetText, measuredSpeedup, pct, predictedSpeedup, short, speedup, stateClass,
  time,
} from '../format.js';

const html = htm.bind(h);
const REFRESH_MS = 3000;

function matches(job, text) {
  if (!text) return true;
  const r = job.request || {};
  const hay = [job.id, job.owner, job.state, r.agent, r.model_sha256, r.dataset_name, r.device_class,
    r.budget && r.budget.kind].join(' ').toLowerCase();
  return text.toLowerCase().split(/\s+/).every((word) => hay.includes(word));
}

// Runs `fetchList(onPage)` now and again `delayOf()` ms after each run ends, so never
// abandons a fetch under way, however long it takes. `show(list, complete)` gets the jobs
// so far after each page and then the whole list; `fail(error)` an error. Returns the stop
// function, after which nothing more is shown.
export function refreshLoop(fetchList, show, fail, delayOf, timers = globalThis) {
  let live = true;
  let timer = null;
  const run = async () => {
    try {
      const list = await fetchList((jobs) => live && show(jobs, false));
      if (live) show(list, true);
    } catch (e) {
      if (live) fail(e);
    }
    if (live) timer = timers.setTimeout(run, delayOf());
  };
  run();
  return () => {
    live = false;
    timers.clearTimeout(timer);
  };
}

export function JobsPage({ route }) {
  const { state = '', q = '', sort = 'created', desc = '1', sel = '' } = route.params;
  const selected = sel ? sel.split(',') : [];
  const select = (id, on) => replaceParams(route, { sel: (on ? [...selected, id] : selected.filter((s) => s !== id)).join(',') });
  // The list with the state filter it was fetched for: another filter's list is never shown.
  // Its pages show as they come until the filter's whole list is shown; a refresh then
  // replaces it whole.
  const [fetched, setFetched] = useState({ state: null, list: null, complete: false });
  const jobs = fetched.state === state ? fetched.list : null;
  const [error, setError] = useState('');
  const [asked, setAsked] = useState(0);  // a cancel asks for the list again at once
  useEffect(() => {
    let length = 0;
    const show = (list, complete) => {
      length = list.length;
      setFetched((f) => (complete || f.state !== state || !f.complete ? { state, list, complete } : f));
      if (complete) setError('');
    };
    // Long lists refresh less often: 3 s and 1 ms more per job after the last fetch's end.
    return refreshLoop((onPage) => listJobs(state, onPage), show, (e) => setError(e.message),
      () => REFRESH_MS + length);
  }, [state, asked]);

  const cancel = async (job) => {
    try {
      await api(`${jobPath(job.id)}/cancel`, { method: 'POST' });
      setAsked((n) => n + 1);
    } catch (e) {
      setError(e.message);
    }
  };
  const columns = useMemo(() => [
    { key: 'select', label: '', noCsv: true, value: () => '',
      cell: (j) => html`<input type="checkbox" title="compare" checked=${selected.includes(j.id)}
        onChange=${(e) => select(j.id, e.currentTarget.checked)} />` },
    { key: 'id', label: 'job', cell: (j) => html`<a href=${hrefOf('job', j.id)}>${j.id}</a>` },
    { key: 'state', label: 'state', cell: (j) => html`<span class=${stateClass(j.state)}>${j.state}</span>` },
    { key: 'model', label: 'model', value: (j) => j.request.model_sha256,
      cell: (j) => html`<span title=${j.request.model_sha256}>${short(j.request.model_sha256)} · ${(j.request.input_shape || []).join('x')}</span>` },
    { key: 'agent', label: 'agent', value: (j) => j.request.agent },
    { key: 'budget', label: 'budget', value: (j) => budgetText(j.request.budget) },
    { key: 'episodes', label: 'episodes', num: true, value: (j) => j.episodes_done,
      cell: (j) => `${j.episodes_done} / ${j.request.episodes || '?'}` },
    { key: 'accuracy', label: 'accuracy', num: true, value: accuracyOf, cell: (j) => pct(accuracyOf(j)) },
    { key: 'measured', label: 'measured speedup', num: true, value: measuredSpeedup, cell: (j) => speedup(measuredSpeedup(j)) },
    { key: 'predicted', label: 'predicted speedup', num: true, value: predictedSpeedup, cell: (j) => speedup(predictedSpeedup(j)) },
    { key: 'owner', label: 'owner' },
    { key: 'created', label: 'created', cell: (j) => time(j.created) },
    { key: 'actions', label: '', noCsv: true, value: () => '',
      cell: (j) => (!TERMINAL.has(j.state) ? html`<button class="small danger" onClick=${() => cancel(j)}
        data-testid=${`cancel-${j.id}`}>cancel</button>`
        : (j.artifacts || []).some((a) => a.name === 'compressed.pt') && html`<button class="small" title="download compressed.pt"
          onClick=${() => downloadArtifact(j.id, 'compressed.pt').catch((e) => setError(e.message))}>compressed.pt</button>`) },
  ], [route]);

  const shown = useMemo(() => sortRows((jobs || []).filter((j) => matches(j, q)), columns, sort, desc === '1'),
    [jobs, q, sort, desc, columns]);
  return html`<section>
    <div class="toolbar">
      <h1>Jobs</h1>
      <select value=${state} onChange=${(e) => replaceParams(route, { state: e.currentTarget.value })} data-testid="state-filter">
        <option value="">every state</option>
        ${JOB_STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <input type="search" placeholder="search id, agent, model, owner…" value=${q} data-testid="job-search"
        onInput=${(e) => replaceParams(route, { q: e.currentTarget.value })} />
      <span class="muted">${jobs ? `${shown.length} of ${jobs.length}${fetched.complete ? '' : ', loading more…'}` : 'loading…'}</span>
      <span class="grow"></span>
      ${selected.length >= 2 && html`<a class="button" href=${hrefOf('compare', '', { ids: sel })} data-testid="compare-link">
        Compare ${selected.length}</a>`}
      <a class="button" href=${hrefOf('submit')}>Submit a job</a>
      <${CsvButton} columns=${columns} rows=${shown} name="jobs" />
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <${DataTable} columns=${columns} rows=${shown} rowKey=${(j) => j.id} sort=${sort} desc=${desc === '1'}
      onSort=${(key, d) => replaceParams(route, { sort: key, desc: d ? '1' : '0' })} testid="jobs-table"
      empty=${jobs ? 'no jobs match' : 'loading…'} maxHeight=${Math.max(300, window.innerHeight - 180)} />
  </section>`;
}
