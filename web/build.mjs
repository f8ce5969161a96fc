// Bundles the dashboard: src/main.js -> app.js, src/app.css -> app.css, src/index.html
// copied; everything vendored from node_modules, nothing loaded from elsewhere at run time.
// usage: node build.mjs [--outdir DIR] (default: dist)
import * as esbuild from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const flag = process.argv.indexOf('--outdir');
const outdir = path.resolve(flag > 0 ? process.argv[flag + 1] : path.join(here, 'dist'));

await mkdir(outdir, { recursive: true });
await esbuild.build({
  entryPoints: { app: path.join(here, 'src/main.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  outdir,
  legalComments: 'none',
  logLevel: 'warning',
});
await esbuild.build({
  entryPoints: { app: path.join(here, 'src/app.css') },
  bundle: true,
  minify: true,
  outdir,
  logLevel: 'warning',
});
await copyFile(path.join(here, 'src/index.html'), path.join(outdir, 'index.html'));
console.log(`dashboard bundled into ${outdir}`);
