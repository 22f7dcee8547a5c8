// The action shim end to end: a release served over HTTPS from a local fixture (with github.com's
// redirect to a CDN), fake binaries that record how they were run, and the runner's files.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { COMMANDS, TARGETS, targetFor } = require('../index.js');
const { tempDir, makeArchive, sha256, startReleaseServer, runShim } = require('./support.js');

const REPO = 'octo/aib';
const TAG = 'v1';
const TARGET = targetFor(process.platform, process.arch);
const BINS = [...new Set(Object.values(COMMANDS).map((c) => c.bin))];
const ASSET = `aib-${TARGET}.tar.gz`;

/** A release of fake binaries; `sums` overrides the SHA256SUMS text. */
async function release(t, dir, { sums } = {}) {
  const archive = makeArchive(dir, TARGET, BINS);
  const text = sums !== undefined ? sums : `${sha256(archive)}  ${ASSET}\n${'0'.repeat(64)}  aib-other.tar.gz\n`;
  const server = await startReleaseServer(t, dir, {
    repo: REPO,
    tag: TAG,
    files: { [ASSET]: archive, SHA256SUMS: Buffer.from(text) },
  });
  const env = {
    GITHUB_SERVER_URL: server.url,
    GITHUB_ACTION_REPOSITORY: REPO,
    GITHUB_ACTION_REF: TAG,
    NODE_EXTRA_CA_CERTS: server.cert,
  };
  return { server, env, archive };
}

/** The release binary is downloaded, verified and run with the inputs as flags; outputs, summary and masks come through; a second run uses the tool cache. */
test('downloads_verifies_and_runs_the_release_binary_then_reuses_the_tool_cache', async (t) => {
  const dir = tempDir(t, 'download');
  const { server, env } = await release(t, dir);
  const inputs = { command: 'run', environment: 'sbx', scope: 'Only image', wait: 'true' };
  const fake = { FAKE_OUTPUTS: JSON.stringify({ templateName: 'img-2026', imageVersionId: '/sub/x/1.0.0' }) };

  const first = await runShim(dir, { inputs, env: { ...env, ...fake } });

  assert.equal(first.status, 0, first.stdout + first.stderr);
  assert.deepEqual(first.runs, [{ bin: 'aib', argv: ['run', '--env', 'sbx', '--scope', 'Only image', '--wait'] }]);
  assert.deepEqual(first.outputs, { templateName: 'img-2026', imageVersionId: '/sub/x/1.0.0' });
  assert.equal(first.summary, '### aib\n');
  assert.match(first.stdout, /::add-mask::s3cret-value/);
  assert.match(first.stdout, new RegExp(`SHA-256 [0-9a-f]{64} verified`));
  assert.ok(server.requests.includes(`/cdn/${ASSET}`), server.requests.join(' '));

  server.requests.length = 0;
  const second = await runShim(dir, { inputs: { command: 'upload-scripts', environment: 'dev' }, env });

  assert.equal(second.status, 0, second.stdout + second.stderr);
  assert.deepEqual(second.runs, [{ bin: 'upload-scripts', argv: ['--env', 'dev'] }]);
  assert.match(second.stdout, /from the tool cache/);
  assert.deepEqual(server.requests, [`/${REPO}/releases/download/${TAG}/SHA256SUMS`, '/cdn/SHA256SUMS']);
});

/** The binary's exit status is the action's (3 = timeout, 2 = bad input), outputs written before it still count. */
test('the_binary_exit_status_and_outputs_pass_through', async (t) => {
  const dir = tempDir(t, 'status');
  const { env } = await release(t, dir);
  for (const code of [1, 2, 3, 130]) {
    const res = await runShim(dir, {
      inputs: { command: 'wait-for-build', environment: 'sbx', template: 'img-1', timeout: '90' },
      env: { ...env, FAKE_EXIT: String(code), FAKE_OUTPUTS: JSON.stringify({ runState: 'Running' }) },
    });
    assert.equal(res.status, code, res.stdout + res.stderr);
    assert.deepEqual(res.runs[0].argv, ['--env', 'sbx', '--timeout', '90', '--template', 'img-1']);
    assert.deepEqual(res.outputs, { runState: 'Running' });
  }
});

/** An archive whose SHA-256 differs from SHA256SUMS is refused with both sums, nothing runs and nothing is cached. */
test('a_wrong_checksum_fails_clearly_and_runs_nothing', async (t) => {
  const dir = tempDir(t, 'checksum');
  const { env } = await release(t, dir, { sums: `${'ab'.repeat(32)}  ${ASSET}\n` });

  const res = await runShim(dir, { inputs: { command: 'deploy-infra', environment: 'sbx' }, env });

  assert.equal(res.status, 1);
  assert.match(res.stdout, /::error title=aib action::checksum mismatch for aib-.*\.tar\.gz of release v1: SHA-256 is [0-9a-f]{64}, SHA256SUMS says (ab){32}\. The download is not the published binary; nothing was run\./);
  assert.deepEqual(res.runs, []);
  const cache = path.join(dir, 'toolcache', 'aib');
  const cached = fs.existsSync(cache) ? fs.readdirSync(cache, { recursive: true }) : [];
  assert.deepEqual(cached.filter((f) => String(f).endsWith('.complete')), []);
});

/** A release whose SHA256SUMS does not list the runner's archive is refused before the download. */
test('an_archive_missing_from_SHA256SUMS_is_refused', async (t) => {
  const dir = tempDir(t, 'unlisted');
  const { env, server } = await release(t, dir, { sums: `${'0'.repeat(64)}  aib-other.tar.gz\n` });

  const res = await runShim(dir, { inputs: { command: 'trigger-build', environment: 'sbx' }, env });

  assert.equal(res.status, 1);
  assert.match(res.stdout, new RegExp(`lists no checksum for ${ASSET.replace(/\./g, '\\.')}; refusing to run an unverified binary`));
  assert.deepEqual(res.runs, []);
  assert.ok(!server.requests.includes(`/cdn/${ASSET}`));
});

/** A runner without a released binary fails naming its platform and the supported ones, downloading nothing. */
test('a_missing_platform_fails_clearly', async (t) => {
  const dir = tempDir(t, 'platform');
  const { env, server } = await release(t, dir);
  const preload = path.join(dir, 'arch.js');
  fs.writeFileSync(preload, "Object.defineProperty(process, 'arch', { value: 'riscv64' });\n");

  const res = await runShim(dir, { inputs: { environment: 'sbx' }, env, nodeArgs: ['--require', preload] });

  assert.equal(res.status, 1);
  assert.match(res.stdout, new RegExp(`no aib binary for this runner \\(${process.platform}-riscv64\\); releases have ${Object.keys(TARGETS).join(', ')}`));
  assert.deepEqual(res.runs, []);
  assert.deepEqual(server.requests, []);
});

/** A release that does not exist (e.g. `uses: …@main`) fails with the HTTP status and what to set. */
test('a_missing_release_fails_with_the_status_and_the_version_hint', async (t) => {
  const dir = tempDir(t, 'norelease');
  const { env } = await release(t, dir);

  const res = await runShim(dir, { inputs: { environment: 'sbx', version: 'v9.9.9' }, env });

  assert.equal(res.status, 1);
  assert.match(res.stdout, /downloading https:\/\/127\.0\.0\.1:\d+\/octo\/aib\/releases\/download\/v9\.9\.9\/SHA256SUMS failed: HTTP 404\..*Set the `version` input/);
  assert.deepEqual(res.runs, []);
});

/** Bad inputs (unknown command, non-boolean, an input the command does not take, set to other than its default) exit 2 before any download. */
test('bad_inputs_exit_2_before_any_download', async (t) => {
  const dir = tempDir(t, 'badinput');
  const { env, server } = await release(t, dir);
  const cases = [
    [{ command: 'build' }, /input command: 'build' is not one of run, remove-templates/],
    [{ wait: 'yes' }, /input wait: 'yes' is not a boolean/],
    [{ command: 'upload-scripts', scope: 'Only image' }, /input scope applies to command run, not upload-scripts/],
    [{ command: 'run', template: 'img-1' }, /input template applies to command wait-for-build, not run/],
  ];
  for (const [inputs, message] of cases) {
    const res = await runShim(dir, { inputs, env });
    assert.equal(res.status, 2, JSON.stringify(inputs));
    assert.match(res.stdout, message);
  }
  assert.deepEqual(server.requests, []);
});

/** The toolchain variables cargo needs, as the runner's environment would have them. */
function cargoEnv() {
  const env = {};
  for (const k of ['CARGO_HOME', 'RUSTUP_HOME', 'RUSTUP_TOOLCHAIN']) if (process.env[k]) env[k] = process.env[k];
  return env;
}

/** From a source checkout (`uses: ./`, no GITHUB_ACTION_REPOSITORY) the binary is built with cargo and run. */
test('uses_dot_builds_the_binary_from_the_checkout_with_cargo', async (t) => {
  const dir = tempDir(t, 'source');
  // A checkout in miniature: the shim next to a workspace with an `upload-scripts` binary.
  const checkout = path.join(dir, 'checkout');
  fs.mkdirSync(path.join(checkout, 'action'), { recursive: true });
  fs.mkdirSync(path.join(checkout, 'src'), { recursive: true });
  fs.copyFileSync(require.resolve('../index.js'), path.join(checkout, 'action', 'index.js'));
  fs.writeFileSync(
    path.join(checkout, 'Cargo.toml'),
    '[package]\nname = "upload-scripts"\nversion = "0.0.0"\nedition = "2021"\n\n[workspace]\n',
  );
  fs.writeFileSync(path.join(checkout, 'Cargo.lock'), 'version = 4\n\n[[package]]\nname = "upload-scripts"\nversion = "0.0.0"\n');
  fs.writeFileSync(
    path.join(checkout, 'src', 'main.rs'),
    `use std::io::Write;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::fs::OpenOptions::new().append(true).create(true)
        .open(std::env::var("GITHUB_OUTPUT").unwrap()).unwrap();
    writeln!(out, "uploaded<<EOF\\n{}\\nEOF", args.join(" ")).unwrap();
    std::process::exit(4);
}
`,
  );

  const res = await runShim(dir, {
    inputs: { command: 'upload-scripts', environment: 'sbx', os: 'windows', 'what-if': 'true' },
    env: { ...cargoEnv(), CARGO_TARGET_DIR: path.join(dir, 'target') },
    shim: path.join(checkout, 'action', 'index.js'),
  });

  assert.equal(res.status, 4, res.stdout + res.stderr);
  assert.match(res.stdout, /::group::cargo build -p upload-scripts/);
  assert.deepEqual(res.outputs, { uploaded: '--env sbx --os windows --what-if' });
});
