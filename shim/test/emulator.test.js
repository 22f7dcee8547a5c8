// The shim with the real remove-templates binary (built by `cargo test --workspace`, which
// scripts/test runs first) against aib-emulator: a workload identity connection becomes an OIDC
// request to the job's SYSTEM_OIDCREQUESTURI — here a local fake that records the request and
// forwards it to the emulator — then a token, ARM calls and the step's output variables.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { test } = require('node:test');

const { REPO_ROOT, tempDir, makeTask, endpointEnv, runShim, agentView } = require('./support.js');

const DEBUG = path.join(process.env.CARGO_TARGET_DIR || path.join(REPO_ROOT, 'target'), 'debug');

/** A binary `cargo test --workspace` built; a clear failure when it is not there. */
function built(name, override) {
  const file = override || path.join(DEBUG, name);
  assert.ok(fs.existsSync(file), `${file} is missing: run \`cargo test --workspace\` (scripts/test does) first`);
  return file;
}

/** aib-emulator without Azurite (ARM and tokens); resolves to its JSON description. */
function startEmulator(t) {
  const exe = built('aib-emulator', process.env.AIB_EMULATOR_BIN);
  const child = childProcess.spawn(exe, ['--no-azurite', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGINT'));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.on('exit', (code) => reject(new Error(`aib-emulator exited with ${code} before it was ready`)));
  });
}

/**
 * A test CA and a certificate for 127.0.0.1 it signed, in `dir` (rustls refuses a self-signed
 * CA certificate as a server's own, so the two are separate, as in real life).
 */
function certificate(dir) {
  const file = (n) => path.join(dir, n);
  const openssl = (...args) => {
    const res = childProcess.spawnSync('openssl', args, { encoding: 'utf8' });
    assert.equal(res.status, 0, `openssl ${args[0]} failed: ${res.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca-key.pem'),
    '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=aib shim test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('key.pem'),
    '-out', file('req.pem'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('req.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-CAcreateserial',
    '-out', file('cert.pem'), '-days', '1', '-extfile', file('ext.cnf'));
  return { key: file('key.pem'), cert: file('cert.pem'), ca: file('ca.pem') };
}

/**
 * The job's OIDC endpoint, faked: records each request (method, query, Authorization) and
 * forwards it to the emulator's Azure Pipelines OIDC endpoint, whose token Entra (the emulator)
 * accepts.
 */
async function startOidcFake(t, dir, emu) {
  const { key, cert, ca: testCa } = certificate(dir);
  const requests = [];
  const upstream = new URL(emu.azurePipelines.oidcRequestUri);
  const ca = fs.readFileSync(emu.caFile);
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.1');
    requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization });
    const body = [];
    req.on('data', (c) => body.push(c));
    req.on('end', () => {
      const fwd = https.request(
        { host: upstream.hostname, port: upstream.port, path: upstream.pathname + url.search, method: req.method, ca, headers: { authorization: req.headers.authorization, 'content-type': 'application/json' } },
        (up) => {
          res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] || 'application/json' });
          up.pipe(res);
        },
      );
      fwd.on('error', (e) => { res.writeHead(502); res.end(e.message); });
      fwd.end(Buffer.concat(body));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const bundle = path.join(dir, 'trust.pem');
  fs.writeFileSync(bundle, Buffer.concat([ca, Buffer.from('\n'), fs.readFileSync(testCa)]));
  return { url: `https://127.0.0.1:${server.address().port}/org/proj/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken`, requests, bundle };
}

/** Workload identity end to end: the real binary asks the job's OIDC endpoint with the job token and the connection id, signs in, runs, and sets its output variables; the token shows only as ***. */
test('workload_identity_with_the_real_binary_asks_the_job_oidc_endpoint', async (t) => {
  const dir = tempDir(t, 'emu');
  const emu = await startEmulator(t);
  const oidc = await startOidcFake(t, dir, emu);
  const { task, record } = makeTask(t, { aib: { link: built('aib') } });
  const conn = emu.azurePipelines.serviceConnectionId;
  const env = {
    ...endpointEnv(conn, 'WorkloadIdentityFederation', { serviceprincipalid: emu.clientId, tenantid: emu.tenantId }, { subscriptionId: emu.subscriptionId, environment: 'AzureCloud' }),
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: emu.azurePipelines.systemAccessToken,
    SYSTEM_OIDCREQUESTURI: oidc.url,
    SSL_CERT_FILE: oidc.bundle,
    // The emulator is just another cloud's endpoints.
    AIB_ARM_ENDPOINT: emu.url,
    AIB_AUTHORITY_HOST: emu.url,
    INPUT_COMMAND: 'remove-templates',
    INPUT_PARAMETERSFILE: path.join(REPO_ROOT, 'parameters', 'local.image.parameters.json'),
    INPUT_WHATIF: 'true',
  };
  const res = await runShim(task, env, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  assert.equal(oidc.requests.length, 1, JSON.stringify(oidc.requests));
  const [req] = oidc.requests;
  assert.equal(req.method, 'POST');
  assert.equal(req.query.serviceConnectionId, conn);
  assert.equal(req.authorization, `Bearer ${emu.azurePipelines.systemAccessToken}`);
  assert.match(res.stdout, /##vso\[task\.setvariable variable=deleted;isOutput=true;\]0/);
  const { text } = agentView(res.stdout);
  assert.ok(!text.includes(emu.azurePipelines.systemAccessToken), text);
  assert.ok(!res.stderr.includes(emu.azurePipelines.systemAccessToken), res.stderr);
});
