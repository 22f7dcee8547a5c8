// The Azure DevOps task's launcher: run the bundled aib binary for this agent with the task's
// inputs and the service connection's credential.
//
// Everything else (output variables, secrets the binary finds, annotations, progress, the
// summary, the exit code) comes from the binary's Azure Pipelines reporter; this file only turns
// inputs into flags, turns the service connection into the binary's credential options, picks
// the binary for the agent's OS and architecture and launches it. It has no dependencies (the
// .vsix carries no node_modules) and is plain Node that runs on both task handlers (Node20_1,
// Node24).
//
// Packaged layout (scripts/package): <task>/task.json, <task>/shim/index.js,
// <task>/bin/<platform>/aib[.exe], where <platform> is one of PLATFORMS' keys. One multi-call
// binary per platform carries every step (`aib upload-scripts …` is the upload-scripts program;
// docs/distribution.md), which keeps the .vsix small.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The task's folder (task.json, shim/, bin/). */
const TASK_ROOT = path.resolve(__dirname, '..');

/** `command` input → binary and the arguments that come before the flags. */
const COMMANDS = {
  run: { bin: 'aib', pre: ['run'] },
  'remove-templates': { bin: 'aib', pre: ['remove-templates'] },
  'deploy-infra': { bin: 'aib', pre: ['deploy-infra'] },
  'upload-scripts': { bin: 'aib', pre: ['upload-scripts'] },
  'trigger-build': { bin: 'aib', pre: ['trigger-build'] },
  'wait-for-build': { bin: 'aib', pre: ['wait-for-build'] },
};
const ALL = Object.keys(COMMANDS);

/**
 * Every task.json input except `command` and `azureSubscription` → the flag it becomes and the
 * commands that take it. A boolean input adds its flag when true. An input given for a command
 * that does not take it is ignored: the agent fills in task.json defaults (e.g. `scope: All`)
 * for every command. shim/test/contract.test.js checks this table against task.json and the
 * binaries.
 */
const INPUTS = {
  environment: { flag: '--env', commands: ALL },
  os: { flag: '--os', commands: ALL },
  parametersFile: { flag: '--parameters', commands: ALL },
  scope: { flag: '--scope', commands: ['run'] },
  waitForImageBuild: { flag: '--wait', boolean: true, commands: ['run'] },
  removePreviousTemplates: { flag: '--remove-previous', boolean: true, commands: ['run'] },
  template: { flag: '--template', commands: ['wait-for-build'] },
  timeoutMinutes: { flag: '--timeout', commands: ['wait-for-build', 'run'] },
  whatIf: { flag: '--what-if', boolean: true, commands: ALL },
};

/** Inputs the shim consumes itself. */
const SHIM_INPUTS = ['command', 'azureSubscription'];

/** Node's platform-arch → the folder under bin/ holding that platform's binaries. */
const PLATFORMS = ['linux-x64', 'linux-arm64', 'win32-x64', 'darwin-x64', 'darwin-arm64'];

/** Service connection schemes → the binary's `--auth` kind. */
const SCHEMES = {
  WorkloadIdentityFederation: 'ado-oidc',
  ServicePrincipal: 'secret',
  ManagedServiceIdentity: 'managed-identity',
};

/** The clouds the binary knows by name (`--cloud`); a connection's `environment` data. */
const CLOUDS = ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'];

/** Exit statuses of the binaries (aib::exit::ExitStatus), for the failure message. */
const STATUS_MEANING = { 1: 'an Azure operation failed', 2: 'bad input', 3: 'timed out', 130: 'interrupted' };

/** A failure the shim reports as an error issue plus a failed task, with exit status `status`. */
class ShimError extends Error {
  constructor(message, status = 1) {
    super(message);
    this.status = status;
  }
}

/** An environment variable by name, matched case-insensitively (the agent upper-cases names). */
function envGet(env, name) {
  if (env[name] !== undefined) return env[name];
  const upper = name.toUpperCase();
  for (const [k, v] of Object.entries(env)) if (k.toUpperCase() === upper) return v;
  return undefined;
}

/** `INPUT_<NAME>` as the agent sets it (`.` and spaces → `_`, upper case), trimmed. */
function input(env, name) {
  return (envGet(env, `INPUT_${name.replace(/[. ]/g, '_')}`) || '').trim();
}

/** A task.json boolean input: the agent passes `true`/`false` (any case). */
function booleanInput(env, name) {
  const value = input(env, name).toLowerCase();
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new ShimError(`input ${name}: '${input(env, name)}' is not a boolean; use true or false`, 2);
}

/** Message data escaping for `##vso[` commands: CR and LF (`%` left alone, as the binaries do). */
function escapeData(text) {
  return String(text).replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}


/** The command and the binary's arguments from the inputs (no credential yet). */
function plan(env) {
  const command = input(env, 'command') || 'run';
  const spec = COMMANDS[command];
  if (!spec) throw new ShimError(`input command: '${command}' is not one of ${ALL.join(', ')}`, 2);
  const args = [...spec.pre];
  for (const [name, { flag, boolean, commands }] of Object.entries(INPUTS)) {
    if (!commands.includes(command)) continue;
    const given = boolean ? booleanInput(env, name) : input(env, name);
    if (!given) continue;
    if (name === 'timeoutMinutes' && !/^[1-9][0-9]*$/.test(given)) {
      throw new ShimError(`input timeoutMinutes: '${given}' is not a whole number of minutes`, 2);
    }
    args.push(...(boolean ? [flag] : [flag, given]));
  }
  return { command, spec, args };
}

/**
 * The service connection named by the `azureSubscription` input → the binary's credential
 * options: `args` (kind, ids, subscription, cloud), `env` (what the binary reads from the
 * environment, secrets among them) and `secrets` (to register before anything is printed).
 *
 * The agent hands a task its connection as `ENDPOINT_AUTH_SCHEME_<id>`,
 * `ENDPOINT_AUTH_PARAMETER_<id>_<KEY>` and `ENDPOINT_DATA_<id>_<KEY>` (or the whole
 * authorization as JSON in `ENDPOINT_AUTH_<id>`), and the job's access token as the
 * `SystemVssConnection` endpoint's `ACCESSTOKEN` parameter.
 */
function credential(env) {
  const id = input(env, 'azureSubscription');
  if (!id) throw new ShimError('input azureSubscription: no service connection given', 2);
  let whole = {};
  const json = envGet(env, `ENDPOINT_AUTH_${id}`);
  if (json) {
    try {
      whole = JSON.parse(json) || {};
    } catch {
      throw new ShimError(`service connection ${id}: its authorization is not valid JSON`, 2);
    }
  }
  const wholeParams = Object.fromEntries(
    Object.entries(whole.parameters || {}).map(([k, v]) => [k.toUpperCase(), v]),
  );
  const param = (key) => (envGet(env, `ENDPOINT_AUTH_PARAMETER_${id}_${key}`) || wholeParams[key] || '').trim();
  const data = (key) => (envGet(env, `ENDPOINT_DATA_${id}_${key}`) || '').trim();
  const scheme = (envGet(env, `ENDPOINT_AUTH_SCHEME_${id}`) || whole.scheme || '').trim();
  if (!scheme) {
    throw new ShimError(
      `service connection ${id} is not available to this step (no ENDPOINT_AUTH_SCHEME_${id}); ` +
        'check the azureSubscription input names an Azure Resource Manager service connection this pipeline may use',
      2,
    );
  }
  const kind = Object.entries(SCHEMES).find(([s]) => s.toLowerCase() === scheme.toLowerCase());
  if (!kind) {
    throw new ShimError(
      `service connection ${id}: scheme ${scheme} is not supported; use workload identity federation ` +
        `(recommended), a service principal with a secret, or a managed identity (${Object.keys(SCHEMES).join(', ')})`,
      2,
    );
  }
  const auth = kind[1];
  const args = ['--auth', auth];
  const childEnv = {};
  const secrets = [];
  const clientId = param('SERVICEPRINCIPALID');
  const tenantId = param('TENANTID');
  if (auth === 'ado-oidc' || auth === 'secret') {
    if (!clientId || !tenantId) {
      throw new ShimError(`service connection ${id}: no service principal id or tenant id in its authorization`, 2);
    }
  }
  if (clientId) args.push('--client-id', clientId);
  if (tenantId) args.push('--tenant-id', tenantId);
  if (auth === 'secret') {
    if (param('AUTHENTICATIONTYPE').toLowerCase() === 'spncertificate') {
      throw new ShimError(
        `service connection ${id} uses a certificate, which aib does not support; ` +
          'switch it to workload identity federation (recommended) or a secret',
        2,
      );
    }
    const key = param('SERVICEPRINCIPALKEY');
    if (!key) throw new ShimError(`service connection ${id}: no service principal key in its authorization`, 2);
    childEnv.AZURE_CLIENT_SECRET = key;
    secrets.push(key);
  }
  if (auth === 'ado-oidc') {
    const uri = (envGet(env, 'SYSTEM_OIDCREQUESTURI') || '').trim();
    const token = (
      envGet(env, 'ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN') ||
      envGet(env, 'SYSTEM_ACCESSTOKEN') ||
      ''
    ).trim();
    if (!uri) throw new ShimError('workload identity federation needs System.OidcRequestUri, which this agent does not set (update the agent)');
    if (!token) throw new ShimError('workload identity federation needs the job access token (System.AccessToken), which this step did not get');
    childEnv.SYSTEM_OIDCREQUESTURI = uri;
    childEnv.SYSTEM_ACCESSTOKEN = token;
    childEnv.AIB_SERVICE_CONNECTION_ID = id;
    secrets.push(token);
  }
  const subscription = data('SUBSCRIPTIONID');
  if (subscription) args.push('--subscription-id', subscription);
  const cloud = CLOUDS.find((c) => c.toLowerCase() === data('ENVIRONMENT').toLowerCase());
  if (cloud) args.push('--cloud', cloud);
  return { args, env: childEnv, secrets };
}

/** The folder under bin/ for a platform, or a clear failure listing the supported ones. */
function platformFor(platform, arch) {
  const key = `${platform}-${arch}`;
  if (!PLATFORMS.includes(key)) {
    throw new ShimError(`no aib binary for this agent (${key}); the extension has ${PLATFORMS.join(', ')}`);
  }
  return key;
}

/** The bundled binary, made executable again (a .vsix does not keep the executable bit). */
function bundledBinary(spec, platform, arch) {
  const key = platformFor(platform, arch);
  const exe = path.join(TASK_ROOT, 'bin', key, spec.bin + (platform === 'win32' ? '.exe' : ''));
  if (!fs.existsSync(exe)) {
    throw new ShimError(`the extension has no ${path.basename(exe)} for ${key} (looked for ${exe}); reinstall the extension`);
  }
  if (platform !== 'win32') fs.chmodSync(exe, 0o755);
  return exe;
}

/**
 * The binary's environment: the agent's, without the connection's secrets as the agent passed
 * them (the binary gets only what it needs, under the names it reads), plus the credential's.
 */
function childEnvironment(env, extra) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^(ENDPOINT_AUTH_|SECRET_)/i.test(k)) continue;
    out[k] = v;
  }
  return { ...out, ...extra };
}

/** Runs the binary with inherited stdio; resolves to its exit status (128 + n for signal n). */
function launch(exe, args, env) {
  return new Promise((resolve) => {
    const child = childProcess.spawn(exe, args, { stdio: 'inherit', env });
    // A canceled job signals us: pass it on so the binary can stop cleanly (exit 130).
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e) => {
      console.log(`##vso[task.logissue type=error;]could not start ${escapeData(exe)}: ${escapeData(e.message)}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code !== null ? code : 128 + (os.constants.signals[signal] || 0));
    });
  });
}

/** Marks the task failed with one message (the agent also fails a non-zero exit). */
function fail(message) {
  console.log(`##vso[task.logissue type=error;source=TaskInternal]${escapeData(message)}`);
  console.log(`##vso[task.complete result=Failed;]${escapeData(message)}`);
}

async function main(env = process.env) {
  let status;
  try {
    // Credentials first: their secrets are registered before anything else is printed.
    const cred = credential(env);
    for (const secret of cred.secrets) console.log(`##vso[task.setsecret]${escapeData(secret)}`);
    const { command, spec, args } = plan(env);
    const exe = bundledBinary(spec, process.platform, process.arch);
    status = await launch(exe, [...args, ...cred.args], childEnvironment(env, cred.env));
    if (status !== 0) {
      const meaning = STATUS_MEANING[status] ? ` (${STATUS_MEANING[status]})` : '';
      fail(`aib ${command} failed with exit status ${status}${meaning}`);
    }
  } catch (e) {
    if (!(e instanceof ShimError)) throw e;
    fail(e.message);
    status = e.status;
  }
  return status;
}

module.exports = {
  COMMANDS,
  INPUTS,
  SHIM_INPUTS,
  PLATFORMS,
  SCHEMES,
  plan,
  credential,
  platformFor,
  escapeData,
  main,
};

if (require.main === module) {
  main().then(
    (status) => {
      process.exitCode = status;
    },
    (e) => {
      fail(`aib task: ${e.stack || e}`);
      process.exitCode = 1;
    },
  );
}
