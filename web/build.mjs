// Bundles the dashboard: src/main.js -> app.js (an ES module), src/app.css -> app.css,
// src/index.html copied. Code split: what only some pages use and loads with `import()`
// (src/chart_engine.js, Apache ECharts) is its own file under chunks/, fetched by the first
// page that shows a chart, so the jobs page neither downloads nor parses it. Everything is
// vendored from node_modules, nothing loaded from elsewhere at run time.
// usage: node build.mjs [--outdir DIR] (default: dist)
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHUNKS = 'chunks';  // under the outdir: emptied by each build (no stale chunks)

// Writes the dashboard into `outdir`; resolves with esbuild's metafile of the scripts (their
// outputs, each with its inputs and imports: web/test/build.test.mjs reads it).
export async function bundle(outdir) {
  await mkdir(outdir, { recursive: true });
  await rm(path.join(outdir, CHUNKS), { recursive: true, force: true });
  const scripts = await esbuild.build({
    entryPoints: { app: path.join(here, 'src/main.js') },
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: 'es2020',
    outdir,
    entryNames: '[name]',
    chunkNames: `${CHUNKS}/[name]-[hash]`,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  await esbuild.build({
    entryPoints: { app: path.join(here, 'src/app.css') },
    bundle: true,
    minify: true,
    outdir,
    logLevel: 'warning',
  });
  await copyFile(path.join(here, 'src/index.html'), path.join(outdir, 'index.html'));
  return scripts.metafile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const flag = process.argv.indexOf('--outdir');
  const outdir = path.resolve(flag > 0 ? process.argv[flag + 1] : path.join(here, 'dist'));
  await bundle(outdir);
  console.log(`dashboard bundled into ${outdir}`);
}
