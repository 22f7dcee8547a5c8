// task.json against the shim and the binaries: every input reaches the binary as a flag the
// binary really has, every credential flag the shim passes exists, and every output variable a
// binary writes is declared in task.json (and nothing else is).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { COMMANDS, INPUTS, SHIM_INPUTS, SCHEMES, plan, credential } = require('../index.js');
const { REPO_ROOT, endpointEnv } = require('./support.js');

const task = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'task.json'), 'utf8'));
const inputs = Object.fromEntries(task.inputs.map((i) => [i.name, i]));
const DEBUG = path.join(process.env.CARGO_TARGET_DIR || path.join(REPO_ROOT, 'target'), 'debug');

/** task.json declares exactly the shim's inputs, each labelled, with help and a default. */
test('task_json_inputs_are_the_shim_inputs_each_described', () => {
  assert.deepEqual(Object.keys(inputs).sort(), [...SHIM_INPUTS, ...Object.keys(INPUTS)].sort());
  for (const [name, i] of Object.entries(inputs)) {
    assert.ok(i.label && i.helpMarkDown, `input ${name} has no label or help`);
    assert.equal(typeof i.defaultValue, 'string', `input ${name} has no string default`);
    assert.equal(i.type === 'boolean', Boolean(INPUTS[name] && INPUTS[name].boolean), `input ${name}: boolean in task.json and shim differ`);
  }
  assert.deepEqual(Object.keys(inputs.command.options).sort(), Object.keys(COMMANDS).sort());
  assert.equal(inputs.azureSubscription.type, 'connectedService:AzureRM');
  assert.deepEqual(Object.keys(task.execution).sort(), ['Node20_1', 'Node24']);
  for (const { target } of Object.values(task.execution)) assert.ok(fs.existsSync(path.join(REPO_ROOT, target)), target);
});

/** Each input, set for each command that takes it, becomes its flag (with the value); task.json's defaults add nothing. */
test('every_task_input_reaches_the_binary_for_every_command_that_takes_it', () => {
  for (const [name, { flag, boolean, commands }] of Object.entries(INPUTS)) {
    for (const command of commands) {
      const value = boolean ? 'true' : name === 'timeoutMinutes' ? '45' : `value of ${name}`;
      const { spec, args } = plan({ INPUT_COMMAND: command, [`INPUT_${name.toUpperCase()}`]: value });
      assert.deepEqual(args, [...spec.pre, ...(boolean ? [flag] : [flag, value])], `${name} for ${command}`);
    }
  }
  for (const command of Object.keys(COMMANDS)) {
    const defaults = Object.fromEntries(task.inputs.map((i) => [`INPUT_${i.name.toUpperCase()}`, i.defaultValue]));
    const { spec, args } = plan({ ...defaults, INPUT_COMMAND: command });
    // The only default that is passed on is scope All, to `aib run`, which is its own default too.
    assert.deepEqual(args, command === 'run' ? ['run', '--scope', 'All'] : spec.pre, command);
  }
});

/** Every flag the shim passes (inputs and credential options) is one the command's binary lists in its --help. */
test('every_flag_the_shim_passes_exists_in_the_binary', () => {
  const credentialFlags = new Set();
  for (const scheme of Object.keys(SCHEMES)) {
    const env = endpointEnv('c', scheme, { serviceprincipalid: 'i', tenantid: 't', serviceprincipalkey: 'k' }, { subscriptionId: 's', environment: 'AzureCloud' });
    const { args } = credential({ ...env, SYSTEM_OIDCREQUESTURI: 'https://x', SYSTEM_ACCESSTOKEN: 'y' });
    for (const a of args) if (a.startsWith('--')) credentialFlags.add(a);
  }
  assert.deepEqual([...credentialFlags].sort(), ['--auth', '--client-id', '--cloud', '--subscription-id', '--tenant-id']);
  for (const [command, spec] of Object.entries(COMMANDS)) {
    const exe = path.join(DEBUG, spec.bin);
    assert.ok(fs.existsSync(exe), `${exe} is missing: run \`cargo test --workspace\` (scripts/test does) first`);
    const help = childProcess.execFileSync(exe, [...spec.pre, '--help'], { encoding: 'utf8' });
    const flags = [...credentialFlags, ...Object.values(INPUTS).filter((i) => i.commands.includes(command)).map((i) => i.flag)];
    for (const flag of flags) {
      assert.match(help, new RegExp(`(^|[\\s,])${flag}([\\s=,<]|$)`, 'm'), `${spec.bin} ${spec.pre.join(' ')} has no ${flag}`);
    }
    const kinds = /--auth <KIND>\s+Credential kind: ([^(]*)/.exec(help);
    for (const kind of Object.values(SCHEMES)) assert.ok(kinds && kinds[1].includes(kind), `${spec.bin} --auth has no ${kind}`);
  }
});

/** All `.rs` files under `dir`. */
function rustFiles(dir) {
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.rs')).map((f) => path.join(dir, f));
}

/**
 * The output names the binaries write, read from the sources: `.output("name", …)` literals and
 * the `let outputs = [("name", …), …]` tables / `fn pairs` that steps loop over. A call the scan
 * cannot resolve fails the test rather than being missed.
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
    for (const [, body] of tables) for (const m of body.matchAll(/\(\s*"([A-Za-z][A-Za-z0-9_-]*)",/g)) names.add(m[1]);
  }
  assert.ok(names.has('resourceGroup') && names.has('templateName'), `scan found only ${[...names].join(', ')}`);
  return names;
}

/** Every output variable a binary sets is declared in task.json's outputVariables, which declares no other. */
test('every_output_variable_the_binaries_set_is_declared_in_task_json', () => {
  const declared = task.outputVariables.map((o) => o.name).sort();
  assert.deepEqual(declared, [...writtenOutputs()].sort());
  for (const { name, description } of task.outputVariables) assert.ok(description, `output ${name} has no description`);
});
