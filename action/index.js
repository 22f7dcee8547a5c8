// The GitHub Action's launcher: find the aib binary for this runner and run it with the inputs.
//
// Everything else — outputs, masks, annotations, the job summary, the exit code — comes from the
// binary (its GitHub reporter); this file only turns inputs into flags, gets the binary and
// launches it. It has no dependencies (no `npm install` when the action runs) and stays plain
// Node that runs on Node 20 (our tests) as well as node24 (the runner).
//
// Where the binary comes from:
// - `uses: <owner>/aib@<ref>`: the release asset `aib-<target>.tar.gz` of release <ref> (or of the
//   `version` input) of the action's repository, checked against the release's SHA256SUMS file,
//   then kept in the runner's tool cache.
// - `uses: ./` (a checkout of aib itself, GITHUB_ACTION_REPOSITORY empty) without `version`:
//   `cargo build` in the checkout, so the repository tests its own action.
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

/** The action's root: action.yml, and in a source checkout Cargo.toml. */
const ACTION_ROOT = path.resolve(__dirname, '..');

/** `command` input → cargo package, binary and the arguments that come before the flags. */
const COMMANDS = {
  run: { pkg: 'aib-cli', bin: 'aib', pre: ['run'] },
  'remove-templates': { pkg: 'remove-templates', bin: 'remove-templates', pre: [] },
  'deploy-infra': { pkg: 'deploy-infra', bin: 'deploy-infra', pre: [] },
  'upload-scripts': { pkg: 'upload-scripts', bin: 'upload-scripts', pre: [] },
  'trigger-build': { pkg: 'trigger-build', bin: 'trigger-build', pre: [] },
  'wait-for-build': { pkg: 'wait-for-build', bin: 'wait-for-build', pre: [] },
};
const ALL = Object.keys(COMMANDS);

/**
 * Every input except `command` and `version` (which pick the binary) → the flag it becomes and
 * the commands that take it. A boolean input adds its flag when true. An input left at its
 * `default` (action.yml's, which the runner fills in) is ignored by commands that do not take
 * it; any other value there is bad input. action.yml's inputs and defaults and the binaries'
 * `--help` are checked against this table by action/test/contract.test.js.
 */
const INPUTS = {
  environment: { flag: '--env', commands: ALL },
  os: { flag: '--os', commands: ALL },
  parameters: { flag: '--parameters', commands: ALL },
  scope: { flag: '--scope', commands: ['run'], default: 'All' },
  wait: { flag: '--wait', boolean: true, commands: ['run'] },
  'remove-previous': { flag: '--remove-previous', boolean: true, commands: ['run'] },
  'github-deployment': { flag: '--github-deployment', boolean: true, commands: ['run'] },
  'what-if': { flag: '--what-if', boolean: true, commands: ALL },
  timeout: { flag: '--timeout', commands: ['wait-for-build', 'run'] },
  template: { flag: '--template', commands: ['wait-for-build'] },
  auth: { flag: '--auth', commands: ALL },
  'client-id': { flag: '--client-id', commands: ALL },
  'tenant-id': { flag: '--tenant-id', commands: ALL },
  'subscription-id': { flag: '--subscription-id', commands: ALL },
};

/** Node's platform/arch → the Rust target whose release asset runs there. */
const TARGETS = {
  'linux-x64': 'x86_64-unknown-linux-musl',
  'linux-arm64': 'aarch64-unknown-linux-musl',
  'win32-x64': 'x86_64-pc-windows-gnu',
  'darwin-arm64': 'aarch64-apple-darwin',
  'darwin-x64': 'x86_64-apple-darwin',
};

/** The checksum file published with every release (`sha256sum --check` reads it). */
const CHECKSUMS = 'SHA256SUMS';

/** A failure the shim reports as one `::error::` line and exit status `status`. */
class ShimError extends Error {
  constructor(message, status = 1) {
    super(message);
    this.status = status;
  }
}

/** `INPUT_<NAME>` as the runner sets it (upper case, spaces → `_`, hyphens kept), trimmed. */
function input(env, name) {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '').trim();
}

/** YAML 1.2 core booleans, as actions/toolkit's getBooleanInput accepts them. */
function booleanInput(env, name) {
  const value = input(env, name);
  if (['', 'false', 'False', 'FALSE'].includes(value)) return false;
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  throw new ShimError(
    `input ${name}: '${value}' is not a boolean; use true or false (also True, TRUE, False, FALSE)`,
    2,
  );
}

/** The command and the binary's arguments from the inputs; bad input fails before any download. */
function plan(env) {
  const command = input(env, 'command') || 'run';
  const spec = COMMANDS[command];
  if (!spec) {
    throw new ShimError(`input command: '${command}' is not one of ${ALL.join(', ')}`, 2);
  }
  const args = [...spec.pre];
  for (const [name, { flag, boolean, commands, default: def }] of Object.entries(INPUTS)) {
    const given = boolean ? booleanInput(env, name) : input(env, name);
    if (!given) continue;
    if (!commands.includes(command)) {
      if (given === def) continue;
      throw new ShimError(
        `input ${name} applies to command ${commands.join(' or ')}, not ${command}; remove it or change command`,
        2,
      );
    }
    args.push(...(boolean ? [flag] : [flag, given]));
  }
  return { command, spec, args };
}

/** The Rust target for a platform, or a clear failure listing the supported ones. */
function targetFor(platform, arch) {
  const target = TARGETS[`${platform}-${arch}`];
  if (!target) {
    const supported = Object.keys(TARGETS).join(', ');
    throw new ShimError(
      `no aib binary for this runner (${platform}-${arch}); releases have ${supported}. ` +
        'Run on one of those, or build from source with `uses: ./` in a checkout of aib.',
    );
  }
  return target;
}

/** GET a URL into a Buffer, following redirects (release assets redirect to a CDN). */
function download(url, redirects = 5) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const request = client.get(url, { headers: { 'user-agent': 'aib-action' }, timeout: 120000 }, (res) => {
      const { statusCode = 0, headers } = res;
      if ([301, 302, 303, 307, 308].includes(statusCode) && headers.location) {
        res.resume();
        if (redirects === 0) return reject(new ShimError(`too many redirects downloading ${url}`));
        return resolve(download(new URL(headers.location, url).toString(), redirects - 1));
      }
      if (statusCode !== 200) {
        res.resume();
        return reject(
          new ShimError(
            `downloading ${url} failed: HTTP ${statusCode}. Is there a release with this asset? ` +
              'Set the `version` input to a published release (e.g. v1.2.0).',
          ),
        );
      }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (e) => reject(new ShimError(`downloading ${url} failed: ${e.message}`)));
    });
    request.on('timeout', () => request.destroy(new Error('no answer for 120 s')));
    request.on('error', (e) => reject(new ShimError(`downloading ${url} failed: ${e.message}`)));
  });
}

/** The SHA-256 that SHA256SUMS lists for `asset`, or a clear failure. */
function expectedSha256(sums, asset, url) {
  for (const line of sums.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m && m[2] === asset) return m[1].toLowerCase();
  }
  throw new ShimError(`${url} lists no checksum for ${asset}; refusing to run an unverified binary`);
}

/** The binary from the release: tool cache hit, or download + verify + unpack + cache. */
async function releaseBinary(env, spec, tag, repository, target) {
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const base = `${server}/${repository}/releases/download/${encodeURIComponent(tag)}`;
  const asset = `aib-${target}.tar.gz`;
  const sumsUrl = `${base}/${CHECKSUMS}`;
  const sha256 = expectedSha256((await download(sumsUrl)).toString('utf8'), asset, sumsUrl);

  // Keyed by the archive's checksum, so a moved tag (v1) never reuses an older binary.
  const cacheRoot = env.RUNNER_TOOL_CACHE || path.join(os.tmpdir(), 'aib-tool-cache');
  const dir = path.join(cacheRoot, 'aib', `${tag}-${sha256.slice(0, 16)}`, target);
  const exe = path.join(dir, spec.bin + (target.includes('windows') ? '.exe' : ''));
  if (fs.existsSync(`${dir}.complete`) && fs.existsSync(exe)) {
    console.log(`aib ${tag} (${target}) from the tool cache: ${dir}`);
    return exe;
  }

  const archive = await download(`${base}/${asset}`);
  const actual = crypto.createHash('sha256').update(archive).digest('hex');
  if (actual !== sha256) {
    throw new ShimError(
      `checksum mismatch for ${asset} of release ${tag}: SHA-256 is ${actual}, ${CHECKSUMS} says ` +
        `${sha256}. The download is not the published binary; nothing was run.`,
    );
  }
  const temp = fs.mkdtempSync(path.join(env.RUNNER_TEMP || os.tmpdir(), 'aib-'));
  try {
    const file = path.join(temp, asset);
    fs.writeFileSync(file, archive);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    // The archive is named relative to cwd: GNU tar (Git's, on Windows) would read `C:\…` as a host.
    const tar = childProcess.spawnSync('tar', ['-xzf', asset, '-C', dir], { cwd: temp, stdio: 'inherit' });
    if (tar.status !== 0) throw new ShimError(`unpacking ${asset} with tar failed (status ${tar.status})`);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
  if (!fs.existsSync(exe)) throw new ShimError(`${asset} of release ${tag} has no ${path.basename(exe)}`);
  fs.chmodSync(exe, 0o755);
  fs.writeFileSync(`${dir}.complete`, '');
  console.log(`aib ${tag} (${target}) downloaded, SHA-256 ${sha256} verified`);
  return exe;
}

/** The binary built from the checkout the action runs from (`uses: ./`). */
function sourceBinary(spec) {
  console.log(`::group::cargo build -p ${spec.pkg} (uses: ./ — binary built from this checkout)`);
  const build = childProcess.spawnSync(
    'cargo',
    ['build', '--locked', '--message-format=json-render-diagnostics', '-p', spec.pkg, '--bin', spec.bin],
    { cwd: ACTION_ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 },
  );
  console.log('::endgroup::');
  if (build.error) throw new ShimError(`cargo build could not start: ${build.error.message}`);
  if (build.status !== 0) throw new ShimError(`cargo build -p ${spec.pkg} failed (status ${build.status})`);
  let exe;
  for (const line of build.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.executable && msg.target && msg.target.name === spec.bin) {
      exe = msg.executable;
    }
  }
  if (!exe) throw new ShimError(`cargo build -p ${spec.pkg} reported no executable named ${spec.bin}`);
  return exe;
}

/** Where the binary comes from for this run: a release, or the source checkout. */
async function resolveBinary(env, spec) {
  const version = input(env, 'version');
  const repository = env.GITHUB_ACTION_REPOSITORY || '';
  if (!version && !repository && fs.existsSync(path.join(ACTION_ROOT, 'Cargo.toml'))) {
    return sourceBinary(spec);
  }
  const tag = version || env.GITHUB_ACTION_REF || '';
  if (!tag) throw new ShimError('no release to download: set the `version` input (e.g. v1.2.0)', 2);
  const repo = repository || env.GITHUB_REPOSITORY || '';
  if (!repo) throw new ShimError('no repository to download aib from (GITHUB_ACTION_REPOSITORY is empty)');
  return releaseBinary(env, spec, tag, repo, targetFor(process.platform, process.arch));
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
      console.log(`::error::could not start ${exe}: ${e.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code !== null ? code : 128 + (os.constants.signals[signal] || 0));
    });
  });
}

/** Annotation data escaping (`%`, CR, LF), as the runner expects it. */
function escapeData(text) {
  return String(text).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

async function main(env = process.env) {
  try {
    const { spec, args } = plan(env);
    const exe = await resolveBinary(env, spec);
    return await launch(exe, args, env);
  } catch (e) {
    if (!(e instanceof ShimError)) throw e;
    console.log(`::error title=aib action::${escapeData(e.message)}`);
    return e.status;
  }
}

module.exports = { COMMANDS, INPUTS, TARGETS, CHECKSUMS, plan, targetFor, expectedSha256, main };

if (require.main === module) {
  main().then(
    (status) => {
      process.exitCode = status;
    },
    (e) => {
      console.log(`::error title=aib action::${escapeData(e.stack || e)}`);
      process.exitCode = 1;
    },
  );
}
