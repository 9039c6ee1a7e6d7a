/**
 * The size of each sample pool's user data (docs/worker.md, "Size"): the script, its gzip, and the
 * bytes EC2 gets, which EC2 limits to 16,384. For samples/config.yaml they are read back from the
 * launch templates the stack builds (what a deploy sends), also with 250 docker volumes on its
 * first pool (a script over twice the limit).
 *
 *   npm run bench -- user-data
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseConfig, type Config } from '../lib/config';
import { buildStack, logicalName } from '../lib/deploy/stack';
import { gzipUserData } from '../lib/worker/encode';
import { USER_DATA_LIMIT_BYTES } from '../lib/worker/limits';
import { renderUserData } from '../lib/worker/userdata';
import { SAMPLES } from '../test/worker/samples';

const rows: string[][] = [];
const row = (label: string, script: number, sent: number) => rows.push([label, String(script), String(sent), `${((100 * sent) / USER_DATA_LIMIT_BYTES).toFixed(1)} %`, String(USER_DATA_LIMIT_BYTES - sent)]);

for (const [name, config] of Object.entries(SAMPLES))
  for (const pool of config.pools) {
    const script = renderUserData({ config, pool, stage: 'prod' });
    row(`test/worker/samples ${name}/${pool.name}`, Buffer.byteLength(script), gzipUserData(script).length);
  }

const sample = () => parseConfig(readFileSync('samples/config.yaml', 'utf8'), 'samples/config.yaml');
const volumes = sample();
volumes.pools[0].worker.docker.volumes = Array.from({ length: 250 }, (_, i) => `/srv/v${i}:/v${i}:ro`);
for (const [label, config] of [['samples/config.yaml', sample()], ['samples/config.yaml + 250 volumes', volumes]] as [string, Config][]) {
  const resources = buildStack({ config, stage: 'prod', region: config.region ?? 'eu-central-1', vpcId: 'vpc-0123456789abcdef0', renderUserData }).resources as Record<string, any>;
  for (const pool of config.pools) {
    const sent = Buffer.from(resources[`LaunchTemplate${logicalName(pool.name)}`].Properties.LaunchTemplateData.UserData as string, 'base64');
    row(`${label} ${pool.name} (stack)`, gunzipSync(sent).length, sent.length);
  }
}

const head = ['pool', 'script B', 'sent to EC2 (gzip) B', 'of 16 KB', 'left B'];
const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log([head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ')).join('\n'));
