// Runs the browser test (dashboard.test.mjs) under `node --test`, or exits 77 (ctest's
// skip) saying why when something it needs is missing: web/node_modules (npm ci),
// /usr/bin/chromium, the bundled dashboard, or Python's torch for the test's tiny model.
// usage: node run.mjs --server-bin B --worker-bin W --cli-bin ACS --web-root DIR --artifacts DIR
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : '';
};
const skip = (why) => {
  console.log(`skipping: ${why}`);
  process.exit(77);
};
const CHROMIUM = '/usr/bin/chromium';
const PYTHON = '/usr/bin/python3';

if (!existsSync(path.join(here, '..', 'node_modules', 'playwright-core'))) skip('no web/node_modules (deploy/install-deps.sh runs npm ci)');
if (!existsSync(CHROMIUM)) skip(`no ${CHROMIUM} (deploy/install-deps.sh installs Debian's chromium)`);
const webRoot = arg('web-root');
if (!existsSync(path.join(webRoot, 'index.html'))) skip(`the dashboard is not built in '${webRoot}' (target acs_web)`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'acs-web-test-'));
const model = path.join(tmp, 'small.pt');
// A small CNN for 1x1x28x28 inputs, traced: what a user would upload.
const made = spawnSync(PYTHON, ['-c', `
import sys, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, padding=1),
    torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()
torch.jit.trace(m, torch.rand(1, 1, 28, 28)).save(sys.argv[1])
`, model], { encoding: 'utf8' });
if (made.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  skip(`cannot make the test model with ${PYTHON} and torch: ${(made.stderr || made.error || '').toString().slice(-300)}`);
}

const artifacts = arg('artifacts') || path.join(tmp, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', path.join(here, 'dashboard.test.mjs')], {
  stdio: 'inherit',
  env: {
    ...process.env,
    ACS_SERVER_BIN: arg('server-bin'),
    ACS_WORKER_BIN: arg('worker-bin'),
    ACS_CLI_BIN: arg('cli-bin'),
    ACS_WEB_ROOT: webRoot,
    ACS_TEST_MODEL: model,
    ACS_TEST_ARTIFACTS: artifacts,
    ACS_CHROMIUM: CHROMIUM,
  },
});
rmSync(tmp, { recursive: true, force: true });
console.log(`screenshots in ${artifacts}`);
process.exit(result.status === null ? 1 : result.status);
