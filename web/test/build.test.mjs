// The build's split (build.mjs): the app's first load (app.js and what it imports
// statically) holds no ECharts, which is a file of its own that app.js imports on demand;
// index.html loads app.js as a module (an ES module with import statements).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { bundle } from '../build.mjs';

const isEcharts = (input) => /node_modules\/(echarts|zrender)\//.test(input);

test('the first load has no ECharts; the charts load it on demand', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-web-build-'));
  try {
    const meta = await bundle(dir);
    const outputs = meta.outputs;
    const app = Object.keys(outputs).find((name) => path.basename(name) === 'app.js');
    assert.ok(app, Object.keys(outputs).join(', '));
    // The files the browser fetches before app.js runs: app.js and its static imports.
    const firstLoad = new Set([app]);
    for (const name of firstLoad) {
      for (const i of outputs[name].imports) if (i.kind === 'import-statement') firstLoad.add(i.path);
    }
    const inputsOf = (names) => [...names].flatMap((name) => Object.keys(outputs[name].inputs));
    assert.ok(inputsOf(firstLoad).some((input) => input.endsWith('src/main.js')));
    assert.deepEqual(inputsOf(firstLoad).filter(isEcharts), [], 'ECharts in the first load');
    const lazy = outputs[app].imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path);
    assert.ok(inputsOf(lazy).some((input) => input.endsWith('src/chart_engine.js')), lazy.join(', '));
    assert.ok(inputsOf(lazy).some(isEcharts), 'ECharts imported on demand');
    assert.match(readFileSync(path.join(dir, 'index.html'), 'utf8'), /<script type="module" src="app.js">/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
