/**
 * `pause`, `resume`, `drain`: an operator's hold on a deployment's pools, without a redeploy.
 *
 * Each writes one SSM parameter per pool (lib/controller/holds.ts) that the controller reads at the
 * start of every pass: paused launches nothing (idle targets included); draining also asks every
 * worker of the pool to retire through the controller's normal retire path (the `retire` tag; a
 * busy worker finishes its job first; the fence is unchanged, nothing is terminated by it); resume
 * writes `running`. Who (the caller's ARN, STS GetCallerIdentity) and when are in the value, in the
 * parameter's history (`aws ssm get-parameter-history`, with SSM's own record of the writer) and in
 * the controller's log. A command that changes nothing writes nothing and says so.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { clientSettings } from '../../aws/ssm-client';
import { readHoldRecords, writeHold } from '../../aws/operator-holds';
import { parameterNames } from '../../config';
import { describeHold, holdChange, holdParameter, MAX_REASON, type HoldMode, type HoldRecord } from '../../controller/holds';
import { HOLDS_CACHE_MS } from '../../aws/operator-holds';
import { LOOP_DEFAULTS } from '../../controller/loop';
import { defineCommand, runner } from '../command';
import { UsageError } from './common';
import { credentialsHint, deploymentTarget, DEPLOYMENT_FLAGS, DEPLOYMENT_SYNOPSIS } from './deployment';

/** The caller's identity, as IAM sees it: what the hold records as `by`. */
export async function callerArn(clientOpts: { region: string; endpoint?: string }): Promise<string> {
  const sts = new STSClient(clientSettings(clientOpts));
  try {
    const arn = (await sts.send(new GetCallerIdentityCommand({}))).Arn;
    if (!arn) throw new Error('STS GetCallerIdentity returned no ARN');
    return arn;
  } finally {
    sts.destroy();
  }
}

/** How long until the controller acts on a change: the reader's cache plus the longest gap between passes. */
const EFFECT_WITHIN_S = Math.ceil((HOLDS_CACHE_MS + LOOP_DEFAULTS.tickIntervalMs) / 1000);

const EFFECT: Record<HoldMode, string> = {
  paused: `no launch for the pool from the controller's next pass on (within about ${EFFECT_WITHIN_S} s), for pending jobs or the idle target; its workers keep running jobs and idle ones leave after IdleTime as usual`,
  draining: `no launch from the controller's next pass on (within about ${EFFECT_WITHIN_S} s), and every worker of the pool is asked to retire: idle ones leave at once, busy ones after their job; nothing is terminated`,
  running: `launches resume at the controller's next pass (within about ${EFFECT_WITHIN_S} s); workers already asked to retire still leave`,
};

export interface HoldOutcome {
  pool: string;
  changed: boolean;
  from: HoldMode | 'unreadable';
  to: HoldMode;
  parameter: string;
  version?: number;
  record: HoldRecord;
}

function holdCommand(name: 'pause' | 'resume' | 'drain', mode: HoldMode, summary: string, description: string) {
  return defineCommand({
    name,
    summary,
    synopsis: `${DEPLOYMENT_SYNOPSIS} [--pool NAME] [--reason TEXT] [--json]`,
    description:
      description +
      '\n\nThe hold is an SSM parameter per pool, <ssmPrefix>/<deployment>/<stage>/operator/<pool>, which the controller reads at every pass: no redeploy. It records who (your ARN, from STS GetCallerIdentity) and when; `aws ssm get-parameter-history --name ...` lists every change. Needs ssm:GetParameter (with --deployment), ssm:GetParametersByPath and ssm:PutParameter on those parameters (docs/deployment.md, "Operating a deployment"). Running it again changes nothing and says so.',
    flags: {
      ...DEPLOYMENT_FLAGS,
      pool: { type: 'string', value: 'NAME', description: 'only this pool (when it is unknown, the error lists the pools)', defaultText: 'every pool of the config' },
      reason: { type: 'string', value: 'TEXT', description: `why, for whoever reads the hold later (status, the parameter history); at most ${MAX_REASON} characters` },
      json: { type: 'boolean', description: 'print the outcome per pool as one JSON document' },
    },
    examples: [`${name} --stage prod --deployment acme-ci --region eu-central-1${name === 'resume' ? '' : ' --pool general --reason "registry outage"'}`, `${name} --stage prod --config config.yaml`],
    async run(opts) {
      if (opts.reason !== undefined && opts.reason.length > MAX_REASON) throw new UsageError(`--reason is ${opts.reason.length} characters; at most ${MAX_REASON}`);
      if (opts.reason !== undefined && /[\u0000-\u001f\u007f]/.test(opts.reason)) throw new UsageError('--reason must be one line of text (no control characters)');
      const target = await deploymentTarget(opts);
      const { config, stage, ssm } = target;
      try {
        const names = config.pools.map((p) => p.name);
        const pools = opts.pool ? [opts.pool] : names;
        const unknown = () => new UsageError(`unknown pool "${opts.pool}" (pools of ${config.deployment}/${stage}: ${names.join(', ')})`);
        // A pool removed from the config may still be held: `resume` may lift that hold (or it would
        // come back into force the day the pool is added again); nothing else acts on such a pool.
        if (opts.pool && !names.includes(opts.pool) && mode !== 'running') throw unknown();
        const path = parameterNames(config, stage).operator;
        const current = await readHoldRecords({ ssm, path });
        if (opts.pool && !names.includes(opts.pool) && !current.has(opts.pool)) throw unknown();
        const by = await callerArn(target.clientOpts);
        const at = new Date().toISOString();
        const out: HoldOutcome[] = [];
        for (const pool of pools) {
          const now = current.get(pool);
          const readable = now && !('error' in now) ? now : undefined;
          const change = now && 'error' in now ? { from: 'unreadable' as const } : holdChange(readable, mode);
          const parameter = holdParameter(path, pool);
          if (!change) {
            out.push({ pool, changed: false, from: mode, to: mode, parameter, record: readable ?? { mode, by: '(never held)', at: '' } });
            continue;
          }
          const record: HoldRecord = { mode, by, at, ...(opts.reason ? { reason: opts.reason } : {}) };
          const version = await writeHold({ ssm, path }, pool, record);
          out.push({ pool, changed: true, from: change.from, to: mode, parameter, version, record });
        }
        // Holds still in force on pools the config no longer has (a lifted one says `running`).
        const inForce = (p: string) => {
          const r = current.get(p);
          return !(mode === 'running' && pools.includes(p)) && !(r && !('error' in r) && r.mode === 'running');
        };
        const stale = [...current.keys()].filter((p) => !names.includes(p) && inForce(p)).sort();
        if (opts.json) process.stdout.write(JSON.stringify({ deployment: config.deployment, stage, by, pools: out, effect: EFFECT[mode], holdsOfPoolsNotInConfig: stale }, null, 2) + '\n');
        else {
          const lines = out.map((o) =>
            o.changed
              ? `pool ${o.pool}: ${o.from} -> ${o.to} (by ${by} at ${at}${opts.reason ? `, reason: ${opts.reason}` : ''}; ${o.parameter} version ${o.version ?? '?'})`
              : `pool ${o.pool}: already ${mode}${o.record.at ? ` (${describeHold(o.record)})` : ''}; nothing changed`,
          );
          if (out.some((o) => o.changed)) lines.push(`effect: ${EFFECT[mode]}.`);
          else lines.push('nothing changed: no parameter was written.');
          if (stale.length)
            lines.push(`note: holds remain for pools not in the config (${stale.join(', ')}); the controller ignores them until such a pool is configured again (lift one with: resume --pool NAME).`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        return 0;
      } catch (e) {
        throw credentialsHint(e);
      } finally {
        ssm.destroy();
      }
    },
  });
}

export const pause = holdCommand(
  'pause',
  'paused',
  "stop launches for a deployment's pools (idle targets included) until `resume`, without a redeploy",
  'Pauses launches for the pool (or every pool): from the controller\'s next pass on it launches nothing, neither for pending jobs nor for the idle target. Workers keep running; idle ones leave after IdleTime as usual. Undo with `resume`; `drain` also empties the pool.',
);
export const resume = holdCommand('resume', 'running', 'undo `pause` or `drain`: launches for the pools resume at the next pass', "Lifts an operator's pause or drain. Workers already asked to retire by a drain still leave; the controller launches what the pool needs again.");
export const drain = holdCommand(
  'drain',
  'draining',
  "pause a deployment's pools and ask their workers to retire (busy ones after their job)",
  "Pauses the pool (or every pool) and asks every one of its workers to retire, through the controller's normal retire path: an idle worker leaves at once, a busy one after its job; booting ones do not start their runner. Nothing is terminated by it (the fence still applies). Undo with `resume`: launches resume, workers already asked still leave.",
);

export const runPause = runner(pause);
export const runResume = runner(resume);
export const runDrain = runner(drain);
