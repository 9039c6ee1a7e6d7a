import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../lib/config';

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

test('the README states every default exactly as lib/config.ts DEFAULTS', () => {
  const table = readme.split('<!-- defaults:start -->')[1]?.split('<!-- defaults:end -->')[0];
  expect(table).toBeDefined();
  const rows = new Map(
    table!
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.split('|').map((c) => c.trim()))
      .map((c) => [c[1].replace(/`/g, ''), c[2]] as const),
  );
  expect([...rows.keys()].sort()).toEqual(Object.keys(DEFAULTS).sort());
  for (const [key, value] of Object.entries(DEFAULTS)) expect(`${key}=${rows.get(key)}`).toBe(`${key}=${String(value)}`);
});

test('the README opens with the set-up-and-run command and the test command', () => {
  const firstBlock = readme.split('```sh')[1].split('```')[0];
  expect(firstBlock).toMatch(/^npm ci && npm start\b/m);
  expect(firstBlock).toMatch(/^npm test\b/m);
});

test('no committed file holds a merge conflict marker', () => {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  const root = join(__dirname, '..');
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter((f) => f && !f.endsWith('package-lock.json') && !/\.(png|svg|gz)$/.test(f));
  const marked: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(join(root, f), 'utf8');
    } catch {
      continue; // listed but absent in this checkout
    }
    if (/^(<{7}|>{7}) /m.test(text) || /^<{7}$/m.test(text)) marked.push(f);
  }
  expect(marked).toEqual([]);
});
