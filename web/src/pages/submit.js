// Submit a job: the model (and a dataset file, or a dataset the server knows by name) are
// uploaded first, then the SubmitJobRequest names their sha256; the server validates the
// request and answers its error, shown as it is.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api } from '../api.js';
import { navigate } from '../route.js';
import { classesOf, useDevices } from './fleet.js';

const html = htm.bind(h);

// The names the server accepts (GET /api/v1/search-space: agents, budget kinds, patterns,
// precisions and the default space), as it checks a submitted request.
function useChoices() {
  const [state, setState] = useState({ choices: null, error: '' });
  useEffect(() => {
    let live = true;
    api('/api/v1/search-space').then((choices) => live && setState({ choices, error: '' }))
      .catch((e) => live && setState({ choices: null, error: e.message }));
    return () => { live = false; };
  }, []);
  return state;
}

const defaultsText = (choices, key) => {
  const names = (choices.defaults || {})[key] || [];
  return names.length ? `the server's default, ${names.join(', ')}` : "the server's default";
};

async function upload(kind, file) {
  const reply = await api(`/api/v1/uploads/${kind}`, { method: 'POST', body: file });
  return reply.sha256;
}

function parseShape(text) {
  const dims = text.trim().split(/[x,\s]+/).map(Number);
  if (!dims.length || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`input shape '${text}' is not like 1x3x32x32`);
  return dims;
}

export function SubmitPage() {
  const { choices, error } = useChoices();
  if (!choices) {
    return html`<section><h1>Submit a job</h1>${error ? html`<p class="error" role="alert">the search space: ${error}</p>`
      : html`<p>loading…</p>`}</section>`;
  }
  return html`<${SubmitForm} choices=${choices} />`;
}

function SubmitForm({ choices }) {
  const { devices } = useDevices(0);
  const classes = classesOf(devices || []).map((c) => c.device_class);
  const [form, setForm] = useState({ shape: '1x1x28x28', dataset: 'fashion-mnist', testDataset: '', budget: choices.budget_kinds[0],
    ratio: '0.5', agent: choices.default_agent || choices.agents[0], episodes: '', deviceClass: '', topK: '', timeLimit: '', fineTune: false, patterns: [], precisions: [] });
  const [files, setFiles] = useState({ model: null, data: null });
  const [status, setStatus] = useState({ busy: false, error: '', step: '' });
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const toggle = (key, value) => () => setForm({ ...form,
    [key]: form[key].includes(value) ? form[key].filter((v) => v !== value) : [...form[key], value] });

  const submit = async (e) => {
    e.preventDefault();
    setStatus({ busy: true, error: '', step: 'uploading the model' });
    try {
      if (!files.model) throw new Error('choose a TorchScript model file');
      const request = {
        input_shape: parseShape(form.shape),
        budget: { kind: form.budget, ratio: Number(form.ratio) },
        agent: form.agent,
        device_class: form.deviceClass || classes[0] || '',
        fine_tune: form.fineTune,
        space: { patterns: form.patterns, precisions: form.precisions },
      };
      if (form.episodes) request.episodes = Number(form.episodes);
      if (form.topK) request.top_k = Number(form.topK);
      if (form.timeLimit) request.time_limit_seconds = Number(form.timeLimit);
      if (form.testDataset) request.test_dataset_name = form.testDataset;
      request.model_sha256 = await upload('model', files.model);
      if (files.data) {
        setStatus({ busy: true, error: '', step: 'uploading the dataset' });
        request.dataset_sha256 = await upload('dataset', files.data);
      } else {
        request.dataset_name = form.dataset;
      }
      setStatus({ busy: true, error: '', step: 'checking the model and submitting' });
      const job = await api('/api/v1/jobs', { method: 'POST', json: request });
      navigate('job', job.id);
    } catch (err) {
      setStatus({ busy: false, error: err.message, step: '' });
    }
  };
  const checks = (key, values) => values.map((v) => html`<label class="check">
    <input type="checkbox" checked=${form[key].includes(v)} onChange=${toggle(key, v)} /> ${v}</label>`);
  return html`<section>
    <h1>Submit a job</h1>
    <form class="submit" onSubmit=${submit} data-testid="submit-form">
      <label>TorchScript model <input type="file" name="model" accept=".pt,.pth"
        onChange=${(e) => setFiles({ ...files, model: e.currentTarget.files[0] || null })} /></label>
      <label>input shape <input name="shape" value=${form.shape} onInput=${set('shape')} /></label>
      <label>dataset the server knows <input name="dataset" value=${form.dataset} onInput=${set('dataset')} disabled=${!!files.data} /></label>
      <label>… or a dataset file <input type="file" name="data"
        onChange=${(e) => setFiles({ ...files, data: e.currentTarget.files[0] || null })} /></label>
      <label>test set the server knows (optional) <input name="test" value=${form.testDataset} onInput=${set('testDataset')} /></label>
      <label>budget <select name="budget" value=${form.budget} onChange=${set('budget')}>
        ${choices.budget_kinds.map((b) => html`<option value=${b}>${b}</option>`)}</select>
        <input name="ratio" class="short" value=${form.ratio} onInput=${set('ratio')} /> x of the dense model</label>
      <label>agent <select name="agent" value=${form.agent} onChange=${set('agent')}>
        ${choices.agents.map((a) => html`<option value=${a}>${a}</option>`)}</select></label>
      <label>episodes <input name="episodes" class="short" placeholder="server default" value=${form.episodes} onInput=${set('episodes')} /></label>
      <label>device class <select name="device_class" value=${form.deviceClass || classes[0] || ''} onChange=${set('deviceClass')}>
        ${classes.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
      <label>policies verified on a worker <input name="top_k" class="short" placeholder="3" value=${form.topK} onInput=${set('topK')} /></label>
      <label>time limit (s) <input name="time_limit" class="short" placeholder="server's" value=${form.timeLimit} onInput=${set('timeLimit')} />
        <span class="muted">counted while it runs, not while queued</span></label>
      <div class="field" data-testid="patterns">patterns (none: ${defaultsText(choices, 'patterns')}) ${checks('patterns', choices.patterns)}</div>
      <div class="field" data-testid="precisions">precisions (none: ${defaultsText(choices, 'precisions')}) ${checks('precisions', choices.precisions)}</div>
      <label class="check"><input type="checkbox" checked=${form.fineTune} onChange=${set('fineTune')} /> fine-tune the exported model</label>
      <div><button type="submit" disabled=${status.busy} data-testid="submit-button">Submit</button>
        <span class="muted">${status.step}</span></div>
    </form>
    ${status.error && html`<p class="error" role="alert" data-testid="submit-error">${status.error}</p>`}
  </section>`;
}
