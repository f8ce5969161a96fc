// Fleet: the device classes (workers online of all, running tasks) and every worker.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api } from '../api.js';
import { hrefOf } from '../route.js';
import { CsvButton, DataTable } from '../table.js';
import { time } from '../format.js';

const html = htm.bind(h);

export function useDevices(refreshMs = 3000) {
  const [state, setState] = useState({ devices: null, error: '' });
  useEffect(() => {
    let live = true, timer = 0;
    const load = () => api('/api/v1/devices').then(
      (r) => live && setState({ devices: r.devices || [], error: '' }),
      (e) => live && setState((s) => ({ ...s, error: e.message })),
    ).finally(() => { if (live && refreshMs) timer = setTimeout(load, refreshMs); });
    load();
    return () => { live = false; clearTimeout(timer); };
  }, []);
  return state;
}

export function classesOf(devices) {
  const by = new Map();
  for (const d of devices) {
    const c = by.get(d.device_class) || { device_class: d.device_class, workers: 0, online: 0, running_tasks: 0 };
    c.workers += 1;
    c.online += d.online ? 1 : 0;
    c.running_tasks += d.running_tasks;
    by.set(d.device_class, c);
  }
  return [...by.values()].sort((a, b) => a.device_class.localeCompare(b.device_class));
}

const classColumns = [
  { key: 'device_class', label: 'device class' },
  { key: 'online', label: 'online', num: true, cell: (c) => `${c.online} of ${c.workers}` },
  { key: 'running_tasks', label: 'running tasks', num: true },
  { key: 'predictor', label: 'predictor', noCsv: true, value: () => '',
    cell: (c) => html`<a href=${hrefOf('predictors', '', { class: c.device_class })}>status</a>` },
];
const workerColumns = [
  { key: 'worker_id', label: 'worker' },
  { key: 'device_class', label: 'device class' },
  { key: 'online', label: 'state', value: (d) => (d.online ? 'online' : 'offline'),
    cell: (d) => html`<span class=${d.online ? 'state state-succeeded' : 'state state-failed'}>${d.online ? 'online' : 'offline'}</span>` },
  { key: 'running_tasks', label: 'running tasks', num: true },
  { key: 'last_seen', label: 'last seen', value: (d) => time(d.last_seen) },
  { key: 'worker_version', label: 'version' },
];

export function FleetPage() {
  const { devices, error } = useDevices();
  const list = devices || [];
  const classes = classesOf(list);
  return html`<section>
    <div class="toolbar"><h1>Fleet</h1><span class="muted">${devices ? `${list.filter((d) => d.online).length} of ${list.length} workers online` : 'loading…'}</span></div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="toolbar"><h2>Device classes</h2><span class="grow"></span><${CsvButton} columns=${classColumns} rows=${classes} name="device-classes" /></div>
    <${DataTable} columns=${classColumns} rows=${classes} rowKey=${(c) => c.device_class} testid="classes-table"
      empty="no worker has registered" maxHeight=${300} />
    <div class="toolbar"><h2>Workers</h2><span class="grow"></span><${CsvButton} columns=${workerColumns} rows=${list} name="workers" /></div>
    <${DataTable} columns=${workerColumns} rows=${list} rowKey=${(d) => d.worker_id} testid="workers-table"
      empty="no worker has registered" />
  </section>`;
}
