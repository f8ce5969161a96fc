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

export function JobsPage({ route }) {
  const { state = '', q = '', sort = 'created', desc = '1', sel = '' } = route.params;
  const selected = sel ? sel.split(',') : [];
  const select = (id, on) => replaceParams(route, { sel: (on ? [...selected, id] : selected.filter((s) => s !== id)).join(',') });
  // The list with the state filter it was fetched for: another filter's list is never shown.
  const [fetched, setFetched] = useState({ state: null, list: null });
  const jobs = fetched.state === state ? fetched.list : null;
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    listJobs(state).then((list) => live && (setFetched({ state, list }), setError('')), (e) => live && setError(e.message));
    // Long lists refresh less often: 3 s and 1 ms more per job.
    const timer = setTimeout(() => setTick(tick + 1), REFRESH_MS + (jobs ? jobs.length : 0));
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [state, tick]);

  const cancel = async (job) => {
    try {
      await api(`${jobPath(job.id)}/cancel`, { method: 'POST' });
      setTick(tick + 1);
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
  ], [tick, route]);

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
      <span class="muted">${jobs ? `${shown.length} of ${jobs.length}` : 'loading…'}</span>
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
