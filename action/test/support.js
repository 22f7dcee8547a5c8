// Test support for the action shim: a local HTTPS release server (self-signed certificate made
// with openssl, trusted by the shim through NODE_EXTRA_CA_CERTS), fake release archives whose
// binaries record how they were run, and a runner that launches action/index.js the way the
// GitHub runner does (INPUT_* variables, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files).
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const SHIM = path.resolve(__dirname, '..', 'index.js');
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** A fresh temporary directory, removed when the test ends. */
function tempDir(t, name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `aib-action-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed certificate for 127.0.0.1 (it is its own CA), written into `dir`. */
function makeCertificate(dir) {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const res = childProcess.spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE'],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`openssl failed: ${res.stderr}`);
  return { key, cert };
}

/**
 * A fake binary (a Node script) that appends {bin, argv} to $FAKE_RECORD, writes the outputs
 * named in $FAKE_OUTPUTS (JSON) to $GITHUB_OUTPUT in heredoc form, a line to the job summary,
 * masks a value, and exits with $FAKE_EXIT — what aib's GitHub reporter does, in miniature.
 */
function fakeBinary(name) {
  return `#!/usr/bin/env node
const fs = require('node:fs');
const env = process.env;
fs.appendFileSync(env.FAKE_RECORD, JSON.stringify({ bin: ${JSON.stringify(name)}, argv: process.argv.slice(2) }) + '\\n');
console.log('::add-mask::s3cret-value');
for (const [k, v] of Object.entries(JSON.parse(env.FAKE_OUTPUTS || '{}'))) {
  fs.appendFileSync(env.GITHUB_OUTPUT, k + '<<ghadelimiter_x\\n' + v + '\\nghadelimiter_x\\n');
}
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, '### ${name}\\n');
process.exit(Number(env.FAKE_EXIT || 0));
`;
}

/** A release archive `aib-<target>.tar.gz` holding fake binaries for every command. */
function makeArchive(dir, target, bins) {
  const stage = path.join(dir, `stage-${target}`);
  fs.mkdirSync(stage, { recursive: true });
  for (const bin of bins) {
    fs.writeFileSync(path.join(stage, bin), fakeBinary(bin), { mode: 0o755 });
  }
  const archive = path.join(dir, `aib-${target}.tar.gz`);
  const res = childProcess.spawnSync('tar', ['-czf', archive, '-C', stage, ...bins], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`tar failed: ${res.stderr}`);
  return fs.readFileSync(archive);
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/**
 * Serves `files` (name → Buffer) as release `tag` of `repo` the way github.com does: the
 * download URL answers 302 to a CDN path, which serves the bytes. Records every request path.
 */
async function startReleaseServer(t, dir, { repo, tag, files }) {
  const { key, cert } = makeCertificate(dir);
  const requests = [];
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    requests.push(req.url);
    const prefix = `/${repo}/releases/download/${tag}/`;
    if (req.url.startsWith(prefix)) {
      res.writeHead(302, { location: `/cdn/${req.url.slice(prefix.length)}` });
      return res.end();
    }
    const name = req.url.startsWith('/cdn/') ? decodeURIComponent(req.url.slice(5)) : undefined;
    if (name !== undefined && files[name]) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(files[name]);
    }
    res.writeHead(404);
    res.end('Not Found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `https://127.0.0.1:${server.address().port}`, cert, requests };
}

/** Reads a GITHUB_OUTPUT file written in heredoc form into {name: value}. */
function readOutputs(file) {
  const out = {};
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
    out[m[1]] = value.join('\n');
  }
  return out;
}

/**
 * Runs the shim (`node <shim>`) as the runner would: `inputs` become INPUT_* variables, the
 * output and summary files live in `dir`. Resolves to {status, stdout, stderr, outputs, summary,
 * runs} where runs are the fake binaries' records.
 */
function runShim(dir, { inputs = {}, env = {}, nodeArgs = [], shim = SHIM } = {}) {
  const files = {
    GITHUB_OUTPUT: path.join(dir, 'github_output'),
    GITHUB_STEP_SUMMARY: path.join(dir, 'step_summary'),
    FAKE_RECORD: path.join(dir, 'record.jsonl'),
  };
  for (const f of Object.values(files)) fs.rmSync(f, { force: true });
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || os.homedir(),
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: dir,
    RUNNER_TOOL_CACHE: path.join(dir, 'toolcache'),
    ...files,
    ...env,
  };
  for (const [k, v] of Object.entries(inputs)) fullEnv[`INPUT_${k.toUpperCase()}`] = v;
  return new Promise((resolve) => {
    childProcess.execFile(process.execPath, [...nodeArgs, shim], { env: fullEnv, cwd: dir }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      const runs = fs.existsSync(files.FAKE_RECORD)
        ? fs.readFileSync(files.FAKE_RECORD, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
        : [];
      const summary = fs.existsSync(files.GITHUB_STEP_SUMMARY) ? fs.readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8') : '';
      resolve({ status, stdout, stderr, outputs: readOutputs(files.GITHUB_OUTPUT), summary, runs });
    });
  });
}

/** The `inputs:` and `outputs:` of action.yml: name → description (enough YAML for our file). */
function actionYml(file = path.join(REPO_ROOT, 'action.yml')) {
  const sections = { inputs: {}, outputs: {} };
  let section;
  let current;
  let folded = false;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const top = /^([a-z]+):/.exec(line);
    if (top) {
      section = sections[top[1]];
      current = undefined;
      continue;
    }
    if (!section) continue;
    const key = /^ {2}([A-Za-z][A-Za-z0-9-]*):\s*$/.exec(line);
    if (key) {
      current = key[1];
      section[current] = { description: '' };
      continue;
    }
    const desc = /^ {4}description:\s*(.*)$/.exec(line);
    if (desc && current) {
      folded = /^[>|]-?$/.test(desc[1]);
      section[current].description = folded ? '' : desc[1];
      continue;
    }
    const more = /^ {6}(\S.*)$/.exec(line);
    if (more && current && folded) {
      section[current].description = `${section[current].description} ${more[1]}`.trim();
      continue;
    }
    folded = false;
    const def = /^ {4}default:\s*(.*)$/.exec(line);
    if (def && current) section[current].default = def[1].replace(/^'(.*)'$/, '$1');
  }
  return sections;
}

module.exports = {
  SHIM, REPO_ROOT, tempDir, makeArchive, sha256, startReleaseServer, runShim, readOutputs, actionYml,
};
