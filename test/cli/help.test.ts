/**
 * Every command's --help and usage errors, from the command list itself: a command added to
 * COMMANDS (lib/cli/main.ts) is checked here without a new test. Then the framework's rules one by
 * one on concrete commands, and the top level (version, no command, unknown command).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, VERSION } from '../../lib/cli/main';
import { closest, defineCommand, formatHelp, parseFlags, UsageError, type Flag } from '../../lib/cli/command';
import { runCli } from '../helpers/cli';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
const names = COMMANDS.map((c) => c.name);

/** The options block of a help text: flag label -> its text (continuation lines joined). */
function optionsOf(help: string): Map<string, string> {
  const block = help.split('\nOptions:\n')[1].split('\n\n')[0];
  const rows = new Map<string, string>();
  let last = '';
  for (const line of block.split('\n')) {
    const m = /^ {2}(-\S+(?:, --\S+)?(?: \S+)?)(?: {2,}(.*))?$/.exec(line);
    if (m && !line.startsWith('   ')) {
      last = m[1].replace(/^-h, /, '');
      rows.set(last, m[2] ?? '');
    } else rows.set(last, `${rows.get(last)} ${line.trim()}`.trim());
  }
  return rows;
}

describe.each(names)('%s', (name) => {
  const command = COMMANDS.find((c) => c.name === name)!;
  const flags = Object.entries(command.flags) as [string, Flag][];

  test('--help lists every flag with its meaning and default, on stdout, exit 0', async () => {
    const r = await runCli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(new RegExp(`^Usage: gitlab-spot-autoscaler ${name}\\b`));
    expect(r.out).toContain(command.summary);
    const rows = optionsOf(r.out);
    const expected = flags.map(([f, flag]) => (flag.type === 'boolean' ? `--${f}` : `--${f} ${flag.value}`));
    expect([...rows.keys()].sort()).toEqual([...expected, '--help'].sort());
    for (const [f, flag] of flags) {
      const row = rows.get(flag.type === 'boolean' ? `--${f}` : `--${f} ${flag.value}`)!;
      expect(flag.description.length).toBeGreaterThan(10);
      expect(row.replace(/\s+/g, ' ')).toContain(flag.description.replace(/\s+/g, ' '));
      const def = flag.defaultText ?? ('default' in flag && flag.default !== undefined ? String(flag.default) : undefined);
      if (def !== undefined) expect(row.replace(/\s+/g, ' ')).toContain(`default: ${def}`);
    }
    expect((await runCli([name, '-h'])).out).toBe(r.out);
    expect((await runCli(['help', name])).out).toBe(r.out);
  });

  test('an unknown option: stderr names it, the usage and where to read more; exit 2, nothing on stdout', async () => {
    const r = await runCli([name, '--no-such-option']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(new RegExp(`^gitlab-spot-autoscaler ${name}: unknown option --no-such-option; the options of ${name} are --`));
    expect(r.err).toContain(`\nUsage: gitlab-spot-autoscaler ${name}`);
    expect(r.err).toContain(`Run \`gitlab-spot-autoscaler ${name} --help\` for what each option means.`);
  });

  test('a positional argument is refused', async () => {
    const r = await runCli([name, 'stray']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`unexpected argument "stray": ${name} takes options only`));
  });

  const valued = flags.find(([, f]) => f.type !== 'boolean');
  if (valued)
    test(`a flag without its value (--${valued[0]}) says what value it needs`, async () => {
      const [f, flag] = valued as [string, Exclude<Flag, { type: 'boolean' }>];
      const r = await runCli([name, `--${f}`]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--${f} needs a value: --${f} ${flag.value}`);
    });

  const required = flags.filter(([, f]) => 'required' in f && f.required);
  if (required.length)
    test(`required flags are named when missing (${required.map(([f]) => `--${f}`).join(', ')})`, async () => {
      const r = await runCli([name]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`--(${required.map(([f]) => f).join('|')}) \\S+ is required: `));
    });
});

test('simulate documents all 16 of its flags', async () => {
  const rows = optionsOf((await runCli(['simulate', '--help'])).out);
  expect([...rows.keys()].filter((k) => k !== '--help')).toHaveLength(16);
  expect(rows.get('--worker-image IMAGE')).toMatch(/one of: prebuilt, base/);
  expect(rows.get('--target-wait S')).toMatch(/targetWait/);
  expect(rows.get('--seed N')).toMatch(/default: 1\]/);
  expect(rows.get('--batch-window S')).toMatch(/a number from 0 to 300; default: \d+/);
});

describe('the flag rules, on real commands', () => {
  test('numbers: not a number, out of range, not whole', async () => {
    expect((await runCli(['simulate', '--seed', 'abc'])).err).toMatch(/--seed "abc": expected a number from 0 to 4294967295 \(whole\)/);
    expect((await runCli(['simulate', '--seed', '1.5'])).err).toMatch(/--seed "1.5": expected a number/);
    expect((await runCli(['simulate', '--webhook-loss', '2'])).err).toMatch(/--webhook-loss "2": expected a number from 0 to 1\n/);
  });

  test('a typo gets a suggestion; a repeated flag and a flag swallowing the next one are named', async () => {
    expect((await runCli(['simulate', '--sede', '3'])).err).toMatch(/unknown option --sede \(did you mean --seed\?\)/);
    expect((await runCli(['explain', '--config', 'a.yaml', '--config', 'b.yaml', '--at', '2026-01-01'])).err).toMatch(/--config is given twice; pass it once/);
    expect((await runCli(['explain', '--config', '--at', '2026-01-01'])).err).toMatch(/--config needs a value: --config FILE \(--at is an option; write --config=--at if it is the value\)/);
    expect((await runCli(['simulate', '--json=yes'])).err).toMatch(/--json takes no value \(got "yes"\)/);
    expect((await runCli(['simulate', '--chart', 'x.svg', '--no-chart'])).err).toMatch(/--chart FILE and --no-chart exclude each other/);
  });

  test('a usage error from inside a command gets the --help pointer but not the usage line', async () => {
    const r = await runCli(['user-data', '--config', join(__dirname, 'nope.yaml'), '--pool', 'x']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gitlab-spot-autoscaler user-data: cannot read config file .*nope\.yaml: ENOENT\nRun `gitlab-spot-autoscaler user-data --help`/);
    expect(r.err).not.toContain('Usage:');
  });

  test('the framework: choices, defaults, lists, --flag=value', () => {
    const cmd = defineCommand({
      name: 't',
      summary: 'a test command',
      flags: {
        mode: { type: 'string', value: 'MODE', choices: ['a', 'b'], default: 'a', description: 'which mode to run in' },
        n: { type: 'number', value: 'N', integer: true, min: 1, default: 3, description: 'how many times to do it' },
        tag: { type: 'string', multiple: true, value: 'TAG', description: 'a tag; repeat for several' },
        dry: { type: 'boolean', description: 'change nothing' },
      },
      run: () => 0,
    });
    expect(parseFlags(cmd, [])).toEqual({ mode: 'a', n: 3, tag: [], dry: false });
    expect(parseFlags(cmd, ['--mode=b', '--n', '5', '--tag', 'x', '--tag=y', '--dry'])).toEqual({ mode: 'b', n: 5, tag: ['x', 'y'], dry: true });
    expect(() => parseFlags(cmd, ['--mode', 'c'])).toThrow(new UsageError('--mode "c" is not accepted (accepted: a, b)'));
    expect(() => parseFlags(cmd, ['--n', '0'])).toThrow(/--n "0": expected a number from 1 \(whole\)/);
    expect(() => parseFlags(cmd, ['--', '--dry'])).toThrow(/unexpected argument "--dry": t takes options only \(did you mean --dry\?\)/);
    expect(formatHelp(cmd)).toMatch(/--mode MODE {2,}which mode to run in \[one of: a, b; default: a\]/);
    expect(closest('stauts', names)).toBe('status');
    expect(closest('zzz', names)).toBeUndefined();
  });
});

describe('top level', () => {
  test('--version prints package.json version', async () => {
    expect(VERSION).toBe(pkg.version);
    for (const flag of ['--version', '-v', '-V']) expect(await runCli([flag])).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
  });

  test('--help lists every command with its usage; no command is a usage error on stderr', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const n of names) expect(help.out).toMatch(new RegExp(`^ {2}${n} +\\S`, 'm'));
    for (const n of names) expect(help.out).toContain(`gitlab-spot-autoscaler ${n}`);
    const none = await runCli([]);
    expect(none).toMatchObject({ code: 2, out: '' });
    expect(none.err).toMatch(/^gitlab-spot-autoscaler: no command given\nRun `gitlab-spot-autoscaler --help` for the commands\.\n$/);
  });

  test('an unknown command suggests the closest one', async () => {
    const r = await runCli(['stauts', '--stage', 'prod']);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toMatch(/^gitlab-spot-autoscaler: unknown command "stauts" \(did you mean status\?\); commands: simulate, /);
  });
});
