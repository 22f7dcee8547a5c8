// The Azure DevOps shim run as the agent runs it: each service-connection kind reaches the
// binary as the right credential options, secrets reach the log only as ***, the binary's exit
// status and output variables pass through, a failure fails the task. Fake binaries record
// their arguments; one test runs the real remove-templates against aib-emulator.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { test } = require('node:test');

const { makeTask, recorded, endpointEnv, runShim, agentView } = require('./support.js');

const CONN = '6f7289d6-cad4-483a-bb81-1d1cd9c5ffb8';
const CLIENT = '11111111-1111-1111-1111-111111111111';
const TENANT = '22222222-2222-2222-2222-222222222222';
const SUB = '33333333-3333-3333-3333-333333333333';
const DATA = { subscriptionId: SUB, subscriptionName: 'Image Factory', environment: 'AzureCloud', scopeLevel: 'Subscription' };
const ACCESS_TOKEN = 'sys-access-token-Zq81';
const CLIENT_SECRET = 'client-secret-Kp2~x9';

/** A workload identity federation connection, as the agent hands it to a task. */
function wifEnv() {
  return {
    ...endpointEnv(CONN, 'WorkloadIdentityFederation', { serviceprincipalid: CLIENT, tenantid: TENANT, workloadIdentityFederationSubject: 'sc://org/proj/conn', workloadIdentityFederationIssuer: 'https://vstoken.dev.azure.com/x' }, DATA),
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: ACCESS_TOKEN,
    SYSTEM_OIDCREQUESTURI: 'https://dev.azure.com/org/proj-id/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken',
  };
}

/** A service principal connection with a client secret. */
function secretEnv() {
  return endpointEnv(CONN, 'ServicePrincipal', { serviceprincipalid: CLIENT, serviceprincipalkey: CLIENT_SECRET, tenantid: TENANT, authenticationType: 'spnKey' }, DATA);
}

/** A workload identity connection reaches the binary as --auth ado-oidc with the OIDC request URI, the job token and the connection id in its environment. */
test('workload_identity_connection_reaches_the_binary_as_ado_oidc', async (t) => {
  const { task, record } = makeTask(t);
  const res = await runShim(task, { ...wifEnv(), INPUT_COMMAND: 'upload-scripts', INPUT_ENVIRONMENT: 'dev' }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  const [run] = recorded(record);
  assert.equal(run.bin, 'aib');
  assert.deepEqual(run.argv, ['upload-scripts', '--env', 'dev', '--auth', 'ado-oidc', '--client-id', CLIENT, '--tenant-id', TENANT, '--subscription-id', SUB, '--cloud', 'AzureCloud']);
  assert.deepEqual(run.env, {
    SYSTEM_ACCESSTOKEN: ACCESS_TOKEN,
    SYSTEM_OIDCREQUESTURI: wifEnv().SYSTEM_OIDCREQUESTURI,
    AIB_SERVICE_CONNECTION_ID: CONN,
  });
  assert.deepEqual(run.leaked, [], 'the connection as the agent passed it must not reach the binary');
  assert.match(res.stdout, /##vso\[task\.setvariable variable=templateName;isOutput=true;\]it-2026/);
  assert.doesNotMatch(res.stdout, /task\.complete/);
});

/** A service principal connection's secret reaches the binary only as AZURE_CLIENT_SECRET, never in its arguments, and the log shows it only as ***. */
test('service_principal_secret_reaches_the_binary_only_in_its_environment_and_the_log_as_stars', async (t) => {
  const { task, record } = makeTask(t);
  const res = await runShim(task, { ...secretEnv(), INPUT_COMMAND: 'deploy-infra', INPUT_ENVIRONMENT: 'sbx', INPUT_WHATIF: 'true' }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  const [run] = recorded(record);
  assert.deepEqual(run.argv, ['deploy-infra', '--env', 'sbx', '--what-if', '--auth', 'secret', '--client-id', CLIENT, '--tenant-id', TENANT, '--subscription-id', SUB, '--cloud', 'AzureCloud']);
  assert.deepEqual(run.env, { AZURE_CLIENT_SECRET: CLIENT_SECRET });
  // Registered before anything else is printed.
  assert.equal(res.stdout.split('\n')[0], `##vso[task.setsecret]${CLIENT_SECRET}`);
  const { text } = agentView(res.stdout);
  assert.ok(!text.includes(CLIENT_SECRET), text);
  assert.match(text, /debug: AZURE_CLIENT_SECRET is \*\*\*/);
  assert.ok(!res.stderr.includes(CLIENT_SECRET), res.stderr);
});

/** With workload identity the job access token is registered as a secret first, so even a binary that printed it would show ***. */
test('workload_identity_access_token_appears_only_as_stars', async (t) => {
  const { task, record } = makeTask(t);
  const res = await runShim(task, { ...wifEnv(), INPUT_COMMAND: 'run' }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  assert.equal(res.stdout.split('\n')[0], `##vso[task.setsecret]${ACCESS_TOKEN}`);
  const { text } = agentView(res.stdout);
  assert.ok(!text.includes(ACCESS_TOKEN), text);
  assert.match(text, /debug: SYSTEM_ACCESSTOKEN is \*\*\*/);
});

/** A managed identity connection reaches the binary as --auth managed-identity with its tenant and subscription, and no secret. */
test('managed_identity_connection_reaches_the_binary_as_managed_identity', async (t) => {
  const { task, record } = makeTask(t);
  const env = endpointEnv(CONN, 'ManagedServiceIdentity', { tenantid: TENANT }, { ...DATA, environment: 'AzureUSGovernment' });
  const res = await runShim(task, { ...env, INPUT_COMMAND: 'trigger-build', INPUT_ENVIRONMENT: 'prd', INPUT_OS: 'windows' }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  const [run] = recorded(record);
  assert.deepEqual(run.argv, ['trigger-build', '--env', 'prd', '--os', 'windows', '--auth', 'managed-identity', '--tenant-id', TENANT, '--subscription-id', SUB, '--cloud', 'AzureUSGovernment']);
  assert.deepEqual(run.env, {});
  assert.doesNotMatch(res.stdout, /setsecret/);
});

/** `command: run` maps to `aib run` with scope, wait, remove-previous, timeout; inputs of other commands are ignored. */
test('run_maps_to_aib_run_with_its_inputs', async (t) => {
  const { task, record } = makeTask(t);
  const res = await runShim(task, {
    ...wifEnv(),
    INPUT_COMMAND: 'run',
    INPUT_ENVIRONMENT: 'dev',
    INPUT_SCOPE: 'Only storage & image',
    INPUT_WAITFORIMAGEBUILD: 'true',
    INPUT_REMOVEPREVIOUSTEMPLATES: 'True',
    INPUT_TIMEOUTMINUTES: '90',
    INPUT_TEMPLATE: 'ignored-for-run',
    INPUT_PARAMETERSFILE: 'images/dev.json',
  }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  const [run] = recorded(record);
  assert.equal(run.bin, 'aib');
  assert.deepEqual(run.argv.slice(0, 11), ['run', '--env', 'dev', '--parameters', 'images/dev.json', '--scope', 'Only storage & image', '--wait', '--remove-previous', '--timeout', '90']);
  assert.ok(!run.argv.includes('--template'));
});

/** A failing binary fails the task (task.complete result=Failed) and its exit status is the task's. */
test('failing_binary_marks_the_task_failed_with_its_exit_status', async (t) => {
  const { task, record } = makeTask(t);
  const res = await runShim(task, { ...wifEnv(), INPUT_COMMAND: 'wait-for-build', INPUT_TEMPLATE: 'it-x', FAKE_EXIT: '3' }, record);
  assert.equal(res.status, 3);
  assert.match(res.stdout, /^##vso\[task\.complete result=Failed;\]aib wait-for-build failed with exit status 3 \(timed out\)$/m);
  assert.equal(recorded(record).length, 1);
});

/** The bundled binary arrives without its executable bit (a .vsix drops it); the shim restores it. */
test('shim_restores_the_executable_bit', async (t) => {
  const { task, binDir, record } = makeTask(t);
  assert.equal(fs.statSync(`${binDir}/aib`).mode & 0o111, 0);
  const res = await runShim(task, { ...wifEnv(), INPUT_COMMAND: 'upload-scripts' }, record);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  assert.equal(fs.statSync(`${binDir}/aib`).mode & 0o777, 0o755);
});

/** Bad input and unusable connections fail the task with exit 2 and run nothing. */
test('bad_input_and_unsupported_connections_fail_before_running_anything', async (t) => {
  const cases = [
    [{ ...wifEnv(), INPUT_COMMAND: 'deploy' }, /input command: 'deploy' is not one of run, remove-templates/],
    [{ ...wifEnv(), INPUT_COMMAND: 'run', INPUT_TIMEOUTMINUTES: '1h' }, /timeoutMinutes: '1h' is not a whole number/],
    [{ ...wifEnv(), INPUT_COMMAND: 'run', INPUT_WHATIF: 'yes' }, /input whatIf: 'yes' is not a boolean/],
    [{ INPUT_COMMAND: 'run' }, /no service connection given/],
    [{ INPUT_COMMAND: 'run', INPUT_AZURESUBSCRIPTION: CONN }, /is not available to this step/],
    [{ ...endpointEnv(CONN, 'ServicePrincipal', { serviceprincipalid: CLIENT, tenantid: TENANT, authenticationType: 'spnCertificate', servicePrincipalCertificate: 'PEM' }, DATA) }, /uses a certificate/],
    [{ ...endpointEnv(CONN, 'PublishProfile', {}, DATA) }, /scheme PublishProfile is not supported/],
  ];
  for (const [env, message] of cases) {
    const { task, record } = makeTask(t);
    const res = await runShim(task, env, record);
    assert.equal(res.status, 2, `${message}: ${res.stdout}`);
    assert.match(res.stdout, /##vso\[task\.complete result=Failed;\]/);
    assert.match(res.stdout, message);
    assert.deepEqual(recorded(record), [], `${message}: nothing may run`);
  }
});

/** A task folder without this platform's binary fails clearly, naming the file it looked for. */
test('missing_platform_binary_fails_naming_it', async (t) => {
  // An older layout: one binary per step, no multi-call aib.
  const { task, record } = makeTask(t, { 'upload-scripts': '#!/bin/sh\n' });
  const res = await runShim(task, { ...wifEnv(), INPUT_COMMAND: 'upload-scripts' }, record);
  assert.equal(res.status, 1);
  assert.match(res.stdout, /the extension has no aib for (linux|darwin|win32)-/);
});

/** An agent platform without a bundled binary fails listing the supported ones. */
test('unknown_platform_fails_listing_the_supported_ones', () => {
  const { platformFor } = require('../index.js');
  assert.equal(platformFor('linux', 'arm64'), 'linux-arm64');
  assert.throws(() => platformFor('freebsd', 'x64'), /no aib binary for this agent \(freebsd-x64\); the extension has linux-x64, linux-arm64, win32-x64, darwin-x64, darwin-arm64/);
});

/** A connection given only as the ENDPOINT_AUTH_<id> JSON document (no per-parameter variables) works the same. */
test('connection_from_the_authorization_json_alone', () => {
  const { credential } = require('../index.js');
  const env = {
    INPUT_AZURESUBSCRIPTION: CONN,
    [`ENDPOINT_AUTH_${CONN}`]: JSON.stringify({ scheme: 'ServicePrincipal', parameters: { serviceprincipalid: CLIENT, tenantid: TENANT, serviceprincipalkey: CLIENT_SECRET } }),
    [`ENDPOINT_DATA_${CONN}_SUBSCRIPTIONID`]: SUB,
  };
  const cred = credential(env);
  assert.deepEqual(cred.args, ['--auth', 'secret', '--client-id', CLIENT, '--tenant-id', TENANT, '--subscription-id', SUB]);
  assert.deepEqual(cred.env, { AZURE_CLIENT_SECRET: CLIENT_SECRET });
  assert.deepEqual(cred.secrets, [CLIENT_SECRET]);
});
