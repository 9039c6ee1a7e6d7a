/**
 * Where a pool's gitlab-runner settings travel (docs/migration.md, "Where the settings travel"):
 * in the user data (gzip, EC2's 16 KB limit) or in an SSM parameter the worker reads at boot.
 * For every pool of the realistic configs in test/fixtures, migrated: the runner config.toml
 * alone (what SSM would hold: standard parameters take 4 KB, advanced 8 KB), and the user data
 * as EC2 gets it: gzip, for every pool (the deployment cache bucket's name reaches the worker as
 * an instance tag, not in the user data).
 *
 *   npm run bench -- runner-settings
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { migrateConfigToml } from '../lib/migrate/migrate';
import { gzipUserData } from '../lib/worker/encode';
import { USER_DATA_LIMIT_BYTES } from '../lib/worker/limits';
import { renderUserData, runnerConfigToml } from '../lib/worker/userdata';

const FIXTURES = 'test/fixtures';
const files = [...readdirSync(join(FIXTURES, 'real')).map((f) => join('real', f)), 'seed-config.toml', 'seed-config-spot.toml'];
const readFile = (p: string) => (existsSync(join(FIXTURES, 'files', basename(p))) ? readFileSync(join(FIXTURES, 'files', basename(p)), 'utf8') : undefined);
const rows: string[][] = [];
let worst = 0;
let biggestToml = 0;
for (const f of files) {
  const { config } = migrateConfigToml(readFileSync(join(FIXTURES, f), 'utf8'), { readFile });
  for (const pool of config.pools) {
    const toml = runnerConfigToml({ config, pool, stage: 'prod' });
    const script = renderUserData({ config, pool, stage: 'prod' });
    const sent = gzipUserData(script).length;
    const tomlBytes = Buffer.byteLength(toml);
    const tomlGz = gzipUserData(toml).length;
    worst = Math.max(worst, sent);
    biggestToml = Math.max(biggestToml, tomlBytes);
    rows.push([`${f}/${pool.name}`, String(Object.keys(pool.runner ?? {}).length), String(tomlBytes), String(tomlGz), String(Buffer.byteLength(script)), String(sent), `${((100 * sent) / USER_DATA_LIMIT_BYTES).toFixed(0)} %`]);
  }
}
const head = ['pool', 'runner keys', 'config.toml B', 'its gzip B', 'script B', 'sent to EC2 (gzip) B', 'of 16 KB'];
const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log([head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ')).join('\n'));
console.log(`\nlargest user data sent to EC2: ${worst} of ${USER_DATA_LIMIT_BYTES} bytes (${USER_DATA_LIMIT_BYTES - worst} to spare)`);
console.log(`largest runner config.toml: ${biggestToml} bytes (an SSM standard parameter holds 4,096; advanced 8,192)`);
