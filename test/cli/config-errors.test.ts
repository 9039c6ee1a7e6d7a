/**
 * Config errors point into the file: a YAML or JSON syntax error, and every setting validation
 * refuses, come with line, column and the offending line under a caret (lib/source-frame.ts), as
 * `validate` prints them. Secret-looking values are masked in those lines.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../lib/config';
import { codeFrame, lineColumn, parsePath } from '../../lib/source-frame';
import { runCli } from '../helpers/cli';

const GOOD = `deployment: ci
gitlab:
  url: https://gitlab.example.com
pools:
  - name: docker
    runUntagged: true
    IdleCount: 2
    worker: { instanceTypes: [m6i.large], subnets: [subnet-0abc], ami: ami-0abc }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('the config was accepted');
}

test('a YAML syntax error: line, column, the line before and the line, a caret', () => {
  const [p, ...rest] = problems(GOOD.replace('    IdleCount: 2', '    IdleCount: 2: 3'));
  expect(rest).toEqual([]);
  expect(p).toBe(
    [
      'not valid YAML/JSON at line 7, column 16: Nested mappings are not allowed in compact mappings',
      '      6 |     runUntagged: true',
      '    > 7 |     IdleCount: 2: 3',
      '        |                ^',
    ].join('\n'),
  );
});

test('a JSON config: the same frame, at the token the parser stopped at; later errors are counted, not listed', () => {
  const json = '{\n  "deployment": "ci",\n  "pools": [\n    {"name": "a" "IdleCount": 1}\n  ]\n}\n';
  const [p] = problems(json);
  expect(p).toMatch(/^not valid YAML\/JSON at line 4, column 18: Unexpected double-quoted-scalar token\n/);
  expect(p).toContain('    > 4 |     {"name": "a" "IdleCount": 1}\n        |                  ^^^^^^^^^^^');
  expect(p).toMatch(/\(\d+ more after this one\)$/);
});

test('a duplicate key is a syntax error at the second one', () => {
  expect(problems(GOOD.replace('    IdleCount: 2', '    IdleCount: 2\n    IdleCount: 3'))[0]).toMatch(/^not valid YAML\/JSON at line 8, column 5: Map keys must be unique\n/);
});

test('validation problems keep their path and message, and gain line, column and frame', () => {
  const text = GOOD.replace('IdleCount: 2', 'IdleCount: -2').replace('    runUntagged: true', '    runUntagged: true\n    IdelTime: 30');
  const ps = problems(text);
  expect(ps).toContainEqual(['pools[0].IdleCount: IdleCount must be >= 0 (line 8, column 16)', '      7 |     IdelTime: 30', '    > 8 |     IdleCount: -2', '        |                ^^'].join('\n'));
  // An unknown setting points at its key, not at the pool.
  expect(ps.find((p) => p.includes('"IdelTime"'))).toMatch(/^pools\[0\]: unknown setting "IdelTime" .* \(line 7, column 5\)\n.*\n {4}> 7 \| {5}IdelTime: 30\n {8}\| {5}\^{8}$/);
});

test('a missing setting has no line to show: the problem stays as it was', () => {
  expect(problems(GOOD.replace(/gitlab:\n {2}url: .*\n/, ''))).toEqual(['gitlab: required (expected object)']);
});

test('secret-looking values are masked in the lines shown, at the same length', () => {
  const token = 'glrt-abcdefABCDEF123456';
  const ps = problems(GOOD.replace('ami: ami-0abc }', `ami: ami-0abc, tags: { t: ${token} } }`));
  expect(ps.join('\n')).not.toContain(token);
  expect(ps[0]).toMatch(/^pools\[0\]\.worker\.tags\.t: looks like a GitLab runner authentication token.* \(line 8, column \d+\)\n/);
  expect(ps[0]).toContain(`t: glrt-${'*'.repeat(token.length - 5)} }`);
  const broken = problems(GOOD.replace('IdleCount: 2', `IdleCount: 2: ${token}`)).join('\n');
  expect(broken).not.toContain(token);
});

test('validate prints it on stderr and exits 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsa-cfgerr-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, GOOD.replace('IdleCount: 2', 'IdleCount: two'));
  const r = await runCli(['validate', '--config', file]);
  expect(r).toMatchObject({ code: 2, out: '' });
  expect(r.err).toBe(
    [
      `gitlab-spot-autoscaler validate: invalid configuration ${file}:`,
      '  - pools[0].IdleCount: expected number, got string (line 7, column 16)',
      '      6 |     runUntagged: true',
      '    > 7 |     IdleCount: two',
      '        |                ^^^',
      '',
    ].join('\n'),
  );
});

describe('source-frame helpers', () => {
  test('paths as lib/config.ts writes them', () => {
    expect(parsePath('pools[0].worker.tags.token')).toEqual(['pools', 0, 'worker', 'tags', 'token']);
    expect(parsePath('(root)')).toEqual([]);
    expect(parsePath('pools')).toEqual(['pools']);
    expect(parsePath('not a path')).toBeUndefined();
  });

  test('positions and frames at the edges of the file', () => {
    expect(lineColumn('a\nbc\n', 3)).toEqual({ line: 2, column: 2 });
    expect(codeFrame('only: line', 0, 4, '')).toBe('> 1 | only: line\n  1 | ^^^^'.replace('  1 |', '    |'));
    // A range running past its line is cut at the line's end; tabs are shown as spaces.
    expect(codeFrame('a: 1\n\tb: [\n', 5, 20, '').split('\n').slice(-2)).toEqual(['> 2 |  b: [', '    | ^^^^^']);
  });
});
