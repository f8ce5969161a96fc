// The dashboard's jobs page with many jobs, in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) against a real acs-server on loopback: a fresh data dir is filled with
// --jobs ended jobs through the server's own store (bench_fill_jobs), the server is started
// on it, and each repeat (a fresh browser context: cold cache) measures from navigation to
// the jobs table showing every row, then a sort (the accuracy column) and a text filter
// (an owner's name) until the table shows their result. The job list comes (MODES) from the
// server's answers recorded beforehand, from the server accepting gzip only, or from the
// server as Chromium asks; a mode "before:X" is X with the app's files of another build
// (--before-web-root, e.g. `node web/build.mjs --outdir DIR` at an older commit) and/or
// another build's server (--before-server-bin, on a copy of the filled data dir), the
// modes' repeats alternating. Prints a table per mode, with where the list's time went
// (each list request's wait, body and parse, the sorts, the renders), and writes JSON. A
// benchmark, not a test: no thresholds; figures in docs/dashboard.md.
// usage: node experiments/web/bench_jobs_render.mjs [--jobs 10000] [--repeats 5]
//   [--server-repeats 1] [--modes recorded,server-gzip,server] [--before-web-root DIR] [--before-server-bin BIN]
//   [--build build] [--json data/bench/jobs_render.json] [--screenshot FILE] [--timeout 40]
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../../web/test/stack.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = createRequire(path.join(root, 'web', 'package.json'))('playwright-core');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const build = path.resolve(arg('build', path.join(root, 'build')));
const opts = {
  jobs: Number(arg('jobs', 10000)),
  repeats: Number(arg('repeats', 5)),
  serverBin: arg('server-bin', path.join(build, 'server', 'acs-server')),
  fillBin: arg('fill-bin', path.join(build, 'experiments', 'bench', 'bench_fill_jobs')),
  webRoot: arg('web-root', path.join(build, 'web', 'dist')),
  chromium: arg('chromium', '/usr/bin/chromium'),
  json: arg('json', 'data/bench/jobs_render.json'),
  screenshot: arg('screenshot', ''),
  timeout: Number(arg('timeout', 40)),  // s to wait for the rows
  modes: arg('modes', 'recorded,server-gzip,server').split(',').map((m) => m.trim()),
  serverRepeats: Number(arg('server-repeats', 1)),
  beforeWebRoot: arg('before-web-root', ''),  // the app of the modes "before:X"
  beforeServerBin: arg('before-server-bin', ''),  // the server of the modes "before:X"
  filter: 'bob',  // an owner of bench_fill_jobs
  sortColumn: 'accuracy',
};

function run(bin, args) {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stdout}${r.stderr}${r.error || ''}`);
  return r.stdout;
}

// What the dashboard shows as a job's accuracy (web/src/format.js accuracyOf).
const accuracyOf = (j) => (Number(j.test_samples) > 0 && j.test_accuracy > 0 ? j.test_accuracy
  : j.exported_accuracy > 0 ? j.exported_accuracy : j.best_accuracy);

// Every job over the API as the dashboard asks for them (pages of 1,000, view=summary: a
// server from before the view answers whole jobs): the jobs, the ms, and each page's answer
// as sent, by the page_token that asked for it ('' the first).
async function listAll(base, token) {
  const t0 = performance.now();
  const jobs = [];
  const pages = new Map();
  let pageToken = '';
  do {
    const q = new URLSearchParams({ page_size: '1000', view: 'summary' });
    if (pageToken) q.set('page_token', pageToken);
    const res = await fetch(`${base}/api/v1/jobs?${q}`, { headers: { Authorization: `Bearer ${token}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`list jobs: ${res.status} ${text}`);
    const reply = JSON.parse(text);
    pages.set(pageToken, text);
    jobs.push(...(reply.jobs || []));
    pageToken = reply.next_page_token || '';
  } while (pageToken);
  return { jobs, pages, ms: performance.now() - t0 };
}

// How the page gets the app and the job list: from the server as Chromium asks (accepting
// br, gzip and deflate: the server then answers br), from the server accepting gzip and
// deflate only, or (the list) the server's answers recorded beforehand and served by the
// browser context itself (no server time; the app from the server, gzip).
const gzipOnly = (context) => context.setExtraHTTPHeaders({ 'Accept-Encoding': 'gzip, deflate' });
const MODES = {
  server: async () => {},
  'server-gzip': gzipOnly,
  recorded: async (context, pages) => {
    await gzipOnly(context);
    const byIndex = [...pages.values()];  // in the list's order: page i starts at offset 1,000 i
    await context.route((url) => url.pathname === '/api/v1/jobs', (route) => {
      const q = new URL(route.request().url()).searchParams;
      const body = q.has('offset') ? byIndex[Number(q.get('offset')) / 1000] || '{"jobs":[]}'
        : pages.get(q.get('page_token') || '');
      return route.fulfill({ status: 200, contentType: 'application/json', body });
    });
  },
};

// The app's files (index.html, app.js, app.css, chunks/…) served from `dir` by the browser
// context (the API from the server): mode "before:X" runs another build of the dashboard.
async function serveApp(context, dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  await context.route((url) => !url.pathname.startsWith('/api/') && url.pathname !== '/healthz', (route) => {
    const name = new URL(route.request().url()).pathname.slice(1) || 'index.html';
    const file = path.resolve(dir, name);
    if (!file.startsWith(path.resolve(dir) + path.sep)) return route.fulfill({ status: 404 });
    return route.fulfill({ status: 200, contentType: types[path.extname(name)] || 'application/octet-stream',
      body: readFileSync(file) });
  });
}

// In the page, before its scripts: the token, and the time (performance.now(), from the
// navigation's start) when the table first shows all `rows` rows. Also, until then, each
// list request's times (window.acsPages: called, headers, body read, parsed), each sort of
// 1,000 rows or more (window.acsSorts) and each row count the table shows (window.acsShown).
function watchRows({ token, rows }) {
  localStorage.setItem('acs.token', token);
  const now = () => performance.now();
  Object.assign(window, { acsPages: [], acsSorts: [], acsShown: [] });
  const fetch0 = window.fetch;
  window.fetch = async function timedFetch(input, ...rest) {
    if (window.acsRowsAt || !String(input).includes('/api/v1/jobs?')) return fetch0.call(this, input, ...rest);
    const page = { url: String(input), start: now() };
    window.acsPages.push(page);
    const res = await fetch0.call(this, input, ...rest);
    page.headers = now();
    const text = res.text.bind(res);
    res.json = async () => {
      const body = await text();
      page.body = now();
      const value = JSON.parse(body);
      page.parsed = now();
      return value;
    };
    return res;
  };
  const sort0 = Array.prototype.sort;
  Array.prototype.sort = function timedSort(...args) {  // eslint-disable-line no-extend-native
    if (this.length < 1000 || window.acsRowsAt) return sort0.apply(this, args);
    const t0 = now();
    const out = sort0.apply(this, args);
    window.acsSorts.push({ at: t0, n: this.length, ms: now() - t0 });
    return out;
  };
  let shown = '';
  const observer = new MutationObserver(() => {
    const table = document.querySelector('[data-testid=jobs-table]');
    if (table && table.dataset.rows !== shown && table.querySelector('tr[data-key]')) {
      shown = table.dataset.rows;
      window.acsShown.push({ at: now(), rows: Number(shown) });
    }
    if (table && table.dataset.rows === String(rows) && table.querySelector('tr[data-key]')) {
      window.acsRowsAt = now();
      observer.disconnect();
    }
  });
  observer.observe(document, { subtree: true, childList: true, attributes: true });
}

// Where the list's time went, from watchRows' records: per list request the ms waiting for
// the answer's headers, reading its body, parsing it, and from parsed to the next request
// sent (the app's work in between, for requests one after another); the sorts' ms; the ms
// from the first request to the last parse (list_ms: the sums overlap when requests do),
// and from the last parse to the rows shown (merge and render after the last answer).
function breakdownOf({ pages, sorts, shown, rowsAt }) {
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const done = pages.filter((p) => p.parsed);
  const lastParsed = Math.max(...done.map((p) => p.parsed));
  return {
    requests: pages.length,
    first_start_ms: Math.min(...pages.map((p) => p.start)),
    wait_ms: sum(done.map((p) => p.headers - p.start)),
    body_ms: sum(done.map((p) => p.body - p.headers)),
    parse_ms: sum(done.map((p) => p.parsed - p.body)),
    between_ms: sum(pages.slice(1).map((p, i) => (pages[i].parsed ? Math.max(0, p.start - pages[i].parsed) : 0))),
    sorts: sorts.length,
    sort_ms: sum(sorts.map((s) => s.ms)),
    renders: shown.length,
    last_parsed_ms: lastParsed,
    list_ms: lastParsed - Math.min(...pages.map((p) => p.start)),
    after_parse_ms: rowsAt - lastParsed,
    pages: done.map((p) => ({ start: p.start, wait: p.headers - p.start, body: p.body - p.headers,
      parse: p.parsed - p.body })),
    shown,
  };
}

// In the page: runs `act` and resolves with the ms until `done()` holds after a DOM change,
// and the ms until the next frame after that.
function timeUntil({ act, arg }) {
  const table = () => document.querySelector('[data-testid=jobs-table]');
  const first = () => table().querySelector('tr[data-key]')?.dataset.key;
  const header = (label) => [...table().querySelectorAll('th')].find((th) => th.textContent.trim().startsWith(label));
  const acts = {
    sort: () => header(arg.label).click(),
    filter: () => {
      const input = document.querySelector('[data-testid=job-search]');
      input.value = arg.text;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
  };
  const checks = {
    sort: () => header(arg.label)?.getAttribute('aria-sort') === 'descending' && first() === arg.first,
    filter: () => table().dataset.rows === String(arg.rows) && first() !== undefined,
  };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const timer = setTimeout(() => reject(new Error(`${act}: not shown after 60 s`)), 60000);
    const observer = new MutationObserver(() => {
      if (!checks[act]()) return;
      observer.disconnect();
      clearTimeout(timer);
      const shown = performance.now() - t0;
      requestAnimationFrame(() => setTimeout(() => resolve({ ms: shown, frame_ms: performance.now() - t0 }), 0));
    });
    observer.observe(document, { subtree: true, childList: true, attributes: true });
    acts[act]();
  });
}

async function measure(browser, bases, token, expect, mode, pages) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.addInitScript(watchRows, { token, rows: opts.jobs });
  const [app, list] = mode.startsWith('before:') ? ['before', mode.slice(7)] : ['current', mode];
  if (app === 'before' && opts.beforeWebRoot) await serveApp(context, opts.beforeWebRoot);
  const base = bases[app] || bases.current;
  await MODES[list](context, pages);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  const t0 = performance.now();
  await page.goto(`${base}/#/jobs`);
  const shown = await page.waitForFunction(() => window.acsRowsAt, null, { timeout: opts.timeout * 1000 })
    .then(() => true, () => false);
  if (!shown) {
    // What the page did instead: its list requests and what it shows.
    const seen = await page.evaluate(() => ({
      api: performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/jobs'))
        .map((e) => ({ start_ms: e.startTime, ms: e.responseEnd - e.startTime, done: e.responseEnd > 0 })),
      rows: document.querySelector('[data-testid=jobs-table]')?.dataset.rows,
      text: document.querySelector('.toolbar')?.innerText.replace(/\s+/g, ' ').slice(-80),
      error: document.querySelector('.error')?.innerText || '',
    }));
    await context.close();
    return { failed: `rows not shown after ${opts.timeout} s`, seen };
  }
  const wall = performance.now() - t0;
  const breakdown = breakdownOf(await page.evaluate(() => ({ pages: window.acsPages, sorts: window.acsSorts,
    shown: window.acsShown, rowsAt: window.acsRowsAt })));
  const load = await page.evaluate(() => {
    const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/jobs'));
    const nav = performance.getEntriesByType('navigation')[0];
    const scripts = performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)
      .filter((name) => name.endsWith('.js'));
    return { rows_ms: window.acsRowsAt, dom_content_loaded_ms: nav.domContentLoadedEventEnd, api_requests: api.length,
      scripts,
      api_first_start_ms: Math.min(...api.map((e) => e.startTime)),
      api_last_end_ms: Math.max(...api.map((e) => e.responseEnd)) };
  });
  const sort = await page.evaluate(timeUntil, { act: 'sort', arg: { label: opts.sortColumn, first: expect.top } });
  const filter = await page.evaluate(timeUntil, { act: 'filter', arg: { text: opts.filter, rows: expect.filtered } });
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
  await context.close();
  return { load: { ...load, wall_ms: wall }, breakdown, sort, filter };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Load: the app's DOMContentLoaded, its first list request sent, its last answered, the
// rows shown, rows shown less the last answer (the render), and node's own wall clock.
const HEAD = ['app ready', 'API start', 'API end', 'rows shown', 'render', 'node wall', 'sort', 'sort+frame', 'filter',
  'filter+frame'];
const cellsOf = (m) => [m.load.dom_content_loaded_ms, m.load.api_first_start_ms, m.load.api_last_end_ms, m.load.rows_ms,
  m.load.rows_ms - m.load.api_last_end_ms, m.load.wall_ms, m.sort.ms, m.sort.frame_ms, m.filter.ms, m.filter.frame_ms];
const BREAKDOWN = ['requests', 'list_ms', 'wait_ms', 'body_ms', 'parse_ms', 'between_ms', 'sorts', 'sort_ms',
  'renders', 'after_parse_ms'];
const line = (cols) => console.log(cols.map((c) => c.padStart(13)).join(''));

// Prints one mode's repeats and their median, min and max; returns them as JSON.
function report(mode, repeats, expect) {
  const list = mode.replace('before:', '');
  const how = { server: 'from the server', 'server-gzip': 'from the server, gzip', recorded: 'recorded' }[list] +
    (list === mode ? '' : `, the app of ${opts.beforeWebRoot || 'this build'}, the server ${opts.beforeServerBin ||
      opts.serverBin}`);
  console.log(`\nThe jobs page with ${opts.jobs} jobs, job list ${how}; ` +
    `${repeats.length} repeats (fresh context each); ms from navigation start (load) or from the click / input ` +
    `(sort by ${opts.sortColumn}, filter "${opts.filter}": ${expect.filtered} rows)`);
  line(['repeat', ...HEAD]);
  repeats.forEach((m, i) => {
    if (!m.failed) return line([String(i + 1), ...cellsOf(m).map((x) => x.toFixed(1))]);
    const done = m.seen.api.filter((e) => e.done);
    const error = m.seen.error ? `, error "${m.seen.error}"` : '';
    console.log(`${String(i + 1).padStart(13)}  ${m.failed}: the page shows "${m.seen.text}"${error}; ` +
      `${m.seen.api.length} list requests (${done.length} answered, median ` +
      `${median(done.map((e) => e.ms)).toFixed(0)} ms, max ${Math.max(...done.map((e) => e.ms)).toFixed(0)} ms)`);
  });
  const rows = repeats.filter((m) => !m.failed).map(cellsOf);
  const stats = {};
  for (const [name, f] of [['median', median], ['min', (xs) => Math.min(...xs)], ['max', (xs) => Math.max(...xs)]]) {
    if (!rows.length) break;
    stats[name] = Object.fromEntries(HEAD.map((h, c) => [h, f(rows.map((row) => row[c]))]));
    line([name, ...HEAD.map((h) => stats[name][h].toFixed(1))]);
  }
  const ok = repeats.filter((m) => !m.failed);
  if (ok.length) {
    // The scripts the page fetched until the rows showed, with their sizes in its web root.
    const webRoot = list === mode || !opts.beforeWebRoot ? opts.webRoot : opts.beforeWebRoot;
    const scripts = [...new Set(ok.flatMap((m) => m.load.scripts))];
    const kb = (name) => (statSync(path.join(webRoot, name)).size / 1000).toFixed(0);
    console.log(`scripts fetched: ${scripts.map((name) => `${name} (${kb(name)} kB)`).join(', ')}`);
    console.log('where the list went (medians, ms summed over the list requests):');
    line(BREAKDOWN);
    line(BREAKDOWN.map((k) => median(ok.map((m) => m.breakdown[k])).toFixed(1)));
  }
  return { repeats, failed: repeats.length - rows.length, ...stats };
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-render-bench-'));
  const data = path.join(dir, 'data');
  const servers = [];
  let browser;
  try {
    const init = run(opts.serverBin, ['--init', '--data-dir', data]);
    const token = /admin token \(shown once\): (\S+)/.exec(init)[1];
    const fillStart = performance.now();
    const fillJson = path.join(dir, 'fill.json');
    process.stdout.write(run(opts.fillBin, ['--data-dir', data, '--jobs', String(opts.jobs), '--json', fillJson]));
    const fill = JSON.parse(readFileSync(fillJson, 'utf8'));
    const fillMs = performance.now() - fillStart;
    // The server `bin` on `dataDir`: its base URL.
    const start = async (bin, dataDir) => {
      const port = await freePort();
      const log = openSync(path.join(dir, `server${servers.length}.log`), 'a');
      servers.push(spawn(bin, ['--data-dir', dataDir, '--listen', `127.0.0.1:${await freePort()}`, '--http-listen',
        `127.0.0.1:${port}`, '--web-root', opts.webRoot, '--log-level', 'warn'], { stdio: ['ignore', log, log] }));
      const url = `http://127.0.0.1:${port}`;
      await waitFor('the HTTP server', async () => (await fetch(`${url}/healthz`)).ok, 60);
      return url;
    };
    const bases = {};
    if (opts.beforeServerBin) {
      cpSync(data, `${data}-before`, { recursive: true });
      bases.before = await start(opts.beforeServerBin, `${data}-before`);
      await listAll(bases.before, token);  // as the other server below: its jobs listed twice
      await listAll(bases.before, token);
    }
    const base = await start(opts.serverBin, data);
    bases.current = base;

    const listed = await listAll(base, token);
    if (listed.jobs.length !== opts.jobs) {
      throw new Error(`the server lists ${listed.jobs.length} jobs, not ${opts.jobs}`);
    }
    const top = [...listed.jobs].sort((a, b) => accuracyOf(b) - accuracyOf(a))[0].id;
    const expect = { top, filtered: fill.owners[opts.filter] };
    // Again: the server lists jobs it has listed before (the page's refreshes; the browser's repeats).
    const again = await listAll(base, token);
    console.log(`acs-server at ${base}: ${listed.jobs.length} jobs listed over the API in ${listed.ms.toFixed(0)} ms ` +
      `(pages of 1,000 one after another, view=summary), again in ${again.ms.toFixed(0)} ms; Chromium ${opts.chromium}`);

    browser = await chromium.launch({ executablePath: opts.chromium, args: ['--no-sandbox'] });
    const out = { options: { ...opts, build }, fill, fill_ms: fillMs, api_list_ms: listed.ms,
      api_list_again_ms: again.ms, expect, modes: {} };
    // The modes' repeats alternate (each mode's first, then each one's second, ...).
    const repeatsOf = (mode) => (mode.replace('before:', '') === 'server' ? opts.serverRepeats : opts.repeats);
    const measured = Object.fromEntries(opts.modes.map((mode) => [mode, []]));
    for (let r = 0; r < Math.max(...opts.modes.map(repeatsOf)); ++r) {
      for (const mode of opts.modes.filter((m) => r < repeatsOf(m))) {
        measured[mode].push(await measure(browser, bases, token, expect, mode, listed.pages));
      }
    }
    for (const mode of opts.modes) out.modes[mode] = report(mode, measured[mode], expect);
    mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`\nwrote ${opts.json}`);
  } finally {
    if (browser) await browser.close();
    for (const server of servers.filter((s) => s.exitCode === null && s.signalCode === null)) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
