// The HTTP/JSON API (docs/service.md "HTTP API") as the dashboard calls it: the bearer
// token from localStorage on every call, errors as ApiError with the server's code and
// message, job events read from the SSE route with fetch (EventSource cannot send a token).

const TOKEN_KEY = 'acs.token';

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.detail = message;
  }
}

function headers(token, extra) {
  const h = { ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// Any 401 tells the app (main.js shows the login page with the server's message).
function unauthorized(error) {
  window.dispatchEvent(new CustomEvent('acs-unauthorized', { detail: error.message }));
}

async function errorOf(res) {
  const text = await res.text();
  try {
    const e = JSON.parse(text).error;
    return new ApiError(res.status, e.code, e.message);
  } catch {
    return new ApiError(res.status, `HTTP ${res.status}`, text.trim() || res.statusText);
  }
}

// The answer of `path` as JSON; ApiError otherwise. `token` overrides the stored one.
export async function api(path, { method = 'GET', body, json, token = getToken(), quiet = false } = {}) {
  const init = { method, headers: headers(token) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', `cannot reach acs-server (${e.message})`);
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401 && !quiet) unauthorized(error);
    throw error;
  }
  return res.json();
}

const PAGE_SIZE = 1000;
const MAX_PAGES = 100;  // 100,000 jobs at most

// Every job the caller may see (all pages), in the server's order (oldest first), each
// with the jobs table's fields only (view=summary: docs/dashboard.md). The first page is
// asked alone (a list of one page costs one request); when its answer says more follow
// (a next_page_token), the next pages are asked by offset, `parallel` at a time (each answer
// asks the next), until one is the last (pages asked past it answer no jobs and are
// dropped). `onPage(jobs)`, when given, is called with the jobs of the pages so far without
// a gap whenever they grow, until the last page is in. Rejects with the first refused
// page's ApiError; nothing is asked after it.
export function listJobs(state, onPage, parallel = 4) {
  const params = { page_size: String(PAGE_SIZE), view: 'summary' };
  if (state) params.state = state;
  const pages = [];  // each page's jobs, by its index
  let last = MAX_PAGES - 1;  // the last page's index, once an answer tells it
  let asked = 0;  // pages asked so far
  let flying = 0;  // pages asked and not answered
  let shown = 0;  // pages given to onPage
  return new Promise((resolve, reject) => {
    let settled = false;
    const fill = () => {  // one page in flight until the first is in, then `parallel`
      const limit = pages[0] ? parallel : 1;
      while (flying < limit && asked <= last) ask();
    };
    const ask = () => {
      const index = asked++;
      ++flying;
      const q = new URLSearchParams(params);
      if (index > 0) q.set('offset', String(index * PAGE_SIZE));
      api(`/api/v1/jobs?${q}`).then((reply) => {
        --flying;
        if (settled) return;
        pages[index] = reply.jobs || [];
        if (!reply.next_page_token) last = Math.min(last, index);
        let ready = shown;
        while (ready <= last && pages[ready]) ++ready;
        if (ready > last) {
          settled = true;
          resolve(pages.slice(0, last + 1).flat());
          return;
        }
        if (ready > shown && onPage) onPage(pages.slice(0, ready).flat());
        shown = ready;
        fill();
      }, (e) => {
        settled = true;
        reject(e);
      });
    };
    fill();
  });
}

export const jobPath = (id) => `/api/v1/jobs/${encodeURIComponent(id)}`;

// An artifact's bytes saved by the browser as `name` (the route needs the token, so no
// plain link).
export async function downloadArtifact(jobId, name) {
  const res = await fetch(`${jobPath(jobId)}/artifacts/${encodeURIComponent(name)}`, { headers: headers(getToken()) });
  if (!res.ok) throw await errorOf(res);
  saveBlob(await res.blob(), name);
}

export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Reads the job's event stream after sequence `after` until it ends (the job ended, or the
// connection dropped), calling onEvent({seq, kind, event}) for each. Resolves with the last
// sequence seen; rejects with ApiError when the server refuses the stream.
export async function readEvents(jobId, after, onEvent, signal) {
  const res = await fetch(`${jobPath(jobId)}/events?after=${after}`, { headers: headers(getToken()), signal });
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401) unauthorized(error);
    throw error;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let last = after;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { id: null, kind: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) message.id = Number(line.slice(4));
        else if (line.startsWith('event: ')) message.kind = line.slice(7);
        else if (line.startsWith('data: ')) message.data += line.slice(6);
      }
      if (message.kind === 'error') throw new ApiError(500, 'STREAM', message.data);
      if (!message.data || message.id === null) continue;  // heartbeat
      last = message.id;
      onEvent({ seq: message.id, kind: message.kind, event: JSON.parse(message.data) });
    }
  }
  return last;
}
