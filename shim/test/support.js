// Test support for the Azure DevOps shim: a packaged task folder in a temp dir (task.json,
// shim/index.js, bin/<platform>/ with fake binaries that record how they were run), a runner
// that launches the shim the way the agent's Node handler does (INPUT_* and ENDPOINT_*
// variables), and the agent's masking of registered secrets, to read the log as a user would.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SHIM = path.join(REPO_ROOT, 'shim', 'index.js');
const { COMMANDS, platformFor } = require(SHIM);

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `aib-ado-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A fake binary (a Node script): appends {bin, argv, env} to $FAKE_RECORD (env: the variables a
 * credential is made of, and whether any ENDPOINT_AUTH_/SECRET_ variable reached it), carelessly
 * prints the secrets it was given (to show the agent masks them), sets an output variable as
 * aib's reporter does, and exits with $FAKE_EXIT.
 */
function fakeBinary(name) {
  return `#!/usr/bin/env node
const fs = require('node:fs');
const env = process.env;
const keep = ['AZURE_CLIENT_SECRET', 'SYSTEM_ACCESSTOKEN', 'SYSTEM_OIDCREQUESTURI', 'AIB_SERVICE_CONNECTION_ID'];
const seen = Object.fromEntries(keep.filter((k) => env[k] !== undefined).map((k) => [k, env[k]]));
const leaked = Object.keys(env).filter((k) => /^(ENDPOINT_AUTH_|SECRET_)/i.test(k));
fs.appendFileSync(env.FAKE_RECORD, JSON.stringify({ bin: ${JSON.stringify(name)}, argv: process.argv.slice(2), env: seen, leaked }) + '\\n');
for (const k of ['AZURE_CLIENT_SECRET', 'SYSTEM_ACCESSTOKEN']) if (env[k]) console.log('debug: ' + k + ' is ' + env[k]);
console.log('##vso[task.setvariable variable=templateName;isOutput=true;]it-2026-11-28-12-00-00');
process.exit(Number(env.FAKE_EXIT || 0));
`;
}

/**
 * The task folder as scripts/package lays it out, in a temp dir: task.json, shim/index.js and
 * bin/<this platform>/ holding `bins` (name → file content; default: a fake for every command),
 * written WITHOUT the executable bit, as a .vsix delivers them.
 */
function makeTask(t, bins) {
  const dir = tempDir(t, 'task');
  const task = path.join(dir, 'task');
  fs.mkdirSync(path.join(task, 'shim'), { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'task.json'), path.join(task, 'task.json'));
  fs.copyFileSync(SHIM, path.join(task, 'shim', 'index.js'));
  const binDir = path.join(task, 'bin', platformFor(process.platform, process.arch));
  fs.mkdirSync(binDir, { recursive: true });
  const all = bins || Object.fromEntries(Object.values(COMMANDS).map(({ bin }) => [bin, fakeBinary(bin)]));
  for (const [name, content] of Object.entries(all)) {
    if (typeof content === 'string') fs.writeFileSync(path.join(binDir, name), content, { mode: 0o644 });
    else fs.symlinkSync(content.link, path.join(binDir, name));
  }
  const record = path.join(dir, 'record.jsonl');
  return { dir, task, binDir, record };
}

/** The runs the fake binaries recorded. */
function recorded(record) {
  if (!fs.existsSync(record)) return [];
  return fs.readFileSync(record, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * The variables the agent gives a task for an Azure Resource Manager service connection `id`
 * of `scheme` with authorization `params` and `data` (subscription etc.).
 */
function endpointEnv(id, scheme, params, data = {}) {
  const env = {
    INPUT_AZURESUBSCRIPTION: id,
    [`ENDPOINT_URL_${id.toUpperCase()}`]: 'https://management.azure.com/',
    [`ENDPOINT_AUTH_SCHEME_${id.toUpperCase()}`]: scheme,
    [`ENDPOINT_AUTH_${id.toUpperCase()}`]: JSON.stringify({ parameters: params, scheme }),
  };
  for (const [k, v] of Object.entries(params)) env[`ENDPOINT_AUTH_PARAMETER_${id.toUpperCase()}_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(data)) env[`ENDPOINT_DATA_${id.toUpperCase()}_${k.toUpperCase()}`] = v;
  return env;
}

/** Runs the task's shim as the agent's Node handler would; resolves to {status, stdout, stderr}. */
function runShim(task, env, record) {
  return new Promise((resolve, reject) => {
    const base = { PATH: process.env.PATH, HOME: process.env.HOME, TF_BUILD: 'True', FAKE_RECORD: record };
    const child = childProcess.spawn(process.execPath, [path.join(task, 'shim', 'index.js')], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * The log as the agent shows it: a `##vso[task.setsecret]` line registers its (decoded) value
 * and is not shown; from then on every registered value is replaced by `***`. A secret printed
 * BEFORE it was registered stays visible, as on the agent.
 */
function agentView(stdout) {
  const secrets = [];
  const shown = [];
  for (const line of stdout.split('\n')) {
    const m = /##vso\[task\.setsecret\](.*)$/.exec(line);
    if (m) {
      secrets.push(m[1].replace(/%0D/g, '\r').replace(/%0A/g, '\n'));
      continue;
    }
    shown.push(secrets.reduce((l, s) => (s ? l.split(s).join('***') : l), line));
  }
  return { text: shown.join('\n'), secrets };
}

module.exports = { REPO_ROOT, SHIM, tempDir, fakeBinary, makeTask, recorded, endpointEnv, runShim, agentView };
