// action.yml against the shim and the binaries: every input reaches the binary as a flag the
// binary really has, and every output a binary writes is declared (and nothing else is).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { COMMANDS, INPUTS, plan } = require('../index.js');
const { REPO_ROOT, actionYml } = require('./support.js');

const yml = actionYml();

/** Inputs consumed by the shim itself rather than passed on as flags. */
const SHIM_INPUTS = ['command', 'version'];

/** action.yml declares exactly the shim's inputs, each with a description and a string default. */
test('action_yml_inputs_are_the_shim_inputs_each_described', () => {
  assert.deepEqual(Object.keys(yml.inputs).sort(), [...SHIM_INPUTS, ...Object.keys(INPUTS)].sort());
  for (const [name, { description, default: def }] of Object.entries(yml.inputs)) {
    assert.ok(description.length > 0, `input ${name} has no description`);
    assert.notEqual(def, undefined, `input ${name} has no default`);
  }
  assert.equal(yml.inputs.command.default, 'run');
  for (const command of Object.keys(COMMANDS)) {
    assert.match(yml.inputs.command.description, new RegExp('`' + command + '`'), `command ${command} undocumented`);
  }
});

/** Each input, set for each command that takes it, becomes its flag (with the value) in the binary's arguments. */
test('every_input_reaches_the_binary_for_every_command_that_takes_it', () => {
  for (const [name, { flag, boolean, commands }] of Object.entries(INPUTS)) {
    for (const command of commands) {
      const value = boolean ? 'true' : `value of ${name}`;
      const { spec, args } = plan({ INPUT_COMMAND: command, [`INPUT_${name.toUpperCase()}`]: value });
      assert.deepEqual(args, [...spec.pre, ...(boolean ? [flag] : [flag, value])], `${name} for ${command}`);
    }
  }
});

/** action.yml's defaults are the shim's: with every input at its default, `run --scope All` runs
 * and every other command gets no flag (the binaries' own defaults apply). */
test('action_yml_defaults_are_the_shims_and_apply_to_every_command', () => {
  for (const [name, { boolean, default: def }] of Object.entries(INPUTS)) {
    assert.equal(yml.inputs[name].default, def !== undefined ? def : boolean ? 'false' : '', `default of ${name}`);
  }
  const defaults = Object.fromEntries(
    Object.entries(yml.inputs).map(([n, i]) => [`INPUT_${n.toUpperCase()}`, i.default]),
  );
  for (const [command, spec] of Object.entries(COMMANDS)) {
    const expected = command === 'run' ? ['run', '--scope', 'All'] : spec.pre;
    assert.deepEqual(plan({ ...defaults, INPUT_COMMAND: command }).args, expected, command);
  }
});

/**
 * The binaries as `cargo test --workspace` builds them (tests on, so the same features and no
 * rebuild inside scripts/test): bin name → executable, and cargo's stderr. --keep-going, so a
 * broken test elsewhere in the workspace does not hide the binaries this check needs.
 */
function builtBinaries() {
  const res = childProcess.spawnSync(
    'cargo',
    ['build', '--workspace', '--locked', '--bins', '--tests', '--keep-going', '--message-format=json-render-diagnostics'],
    { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.equal(res.error, undefined, `cargo could not start: ${res.error}`);
  const bins = {};
  for (const line of res.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.executable && !msg.profile.test && msg.target.kind.includes('bin')) {
      bins[msg.target.name] = msg.executable;
    }
  }
  return { bins, stderr: res.stderr };
}

/** Every flag the shim passes to a command is one that command's binary lists in its --help. */
test('every_flag_the_shim_passes_exists_in_the_binary', () => {
  const { bins, stderr } = builtBinaries();
  for (const [command, spec] of Object.entries(COMMANDS)) {
    assert.ok(bins[spec.bin], `cargo built no ${spec.bin} (have ${Object.keys(bins).join(', ')}):\n${stderr}`);
    const help = childProcess.execFileSync(bins[spec.bin], [...spec.pre, '--help'], { encoding: 'utf8' });
    for (const [name, { flag, commands }] of Object.entries(INPUTS)) {
      if (!commands.includes(command)) continue;
      assert.match(help, new RegExp(`(^|[\\s,])${flag}([\\s=,<]|$)`, 'm'), `${spec.bin} ${spec.pre.join(' ')} has no ${flag} (input ${name})`);
    }
  }
});

/** All `.rs` files under `dir`. */
function rustFiles(dir) {
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.rs'))
    .map((f) => path.join(dir, f));
}

/**
 * The output names the binaries write, read from the sources: `reporter.output("name", …)`
 * literals, and the `let outputs = [("name", …), …]` tables / `fn pairs` that steps loop over.
 * A call site the scan cannot resolve fails the test rather than being missed.
 */
function writtenOutputs() {
  const names = new Set();
  const sources = [
    ...rustFiles(path.join(REPO_ROOT, 'crates', 'aib', 'src', 'steps')),
    ...fs.readdirSync(path.join(REPO_ROOT, 'tasks')).flatMap((t) => rustFiles(path.join(REPO_ROOT, 'tasks', t, 'src'))),
  ];
  for (const file of sources) {
    const text = fs.readFileSync(file, 'utf8');
    const calls = [...text.matchAll(/\.output\(\s*([^,]+),/g)].map((m) => m[1].trim());
    if (calls.length === 0) continue;
    for (const arg of calls) {
      const literal = /^"([^"]+)"$/.exec(arg);
      if (literal) names.add(literal[1]);
      else assert.ok(/let outputs = \[|\.pairs\(\)/.test(text), `${file}: output(${arg}, …) from a table the scan does not know`);
    }
    const tables = [...text.matchAll(/let outputs = \[([\s\S]*?)\n\s*\];/g), ...text.matchAll(/fn pairs\([\s\S]*?\{([\s\S]*?)\n {4}\}/g)];
    for (const [, body] of tables) {
      for (const m of body.matchAll(/\(\s*"([A-Za-z][A-Za-z0-9_-]*)",/g)) names.add(m[1]);
    }
  }
  // deploy-infra's pairs() lives in its mod.rs next to the loop; make sure the scan saw it.
  assert.ok(names.has('resourceGroup') && names.has('templateName'), `scan found only ${[...names].join(', ')}`);
  return names;
}

/** Every output a binary writes to GITHUB_OUTPUT is declared in action.yml, and action.yml declares no other. */
test('every_output_the_binaries_write_is_declared_in_action_yml', () => {
  const written = [...writtenOutputs()].sort();
  const declared = Object.keys(yml.outputs).sort();
  assert.deepEqual(declared, written);
  for (const [name, { description }] of Object.entries(yml.outputs)) {
    assert.ok(description.length > 0, `output ${name} has no description`);
  }
});
