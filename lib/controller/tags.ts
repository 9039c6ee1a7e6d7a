/**
 * The instance tag protocol between the controller, the interruption handler and the workers
 * (docs/controller.md, "Tag protocol"). Pure names and value formats: the worker's user data, the
 * EC2 adapter and the tests all read them from here, so the two sides cannot drift apart.
 *
 * Tag keys avoid "/" and spaces: instance-metadata tags (IMDS `tags/instance/<key>`) accept only
 * letters, digits and `+ - = . , _ : @` in keys (EC2 user guide, "Work with instance tags in
 * instance metadata").
 */
export const TAG_PREFIX = 'gitlab-spot-autoscaler';

export const TAGS = {
  // ---- set by the controller at launch (CreateFleet TagSpecifications) -------------------------
  /** Deployment name (config.deployment). Discovery filters on it. */
  deployment: `${TAG_PREFIX}:deployment`,
  /** Stage (dev, prod, ...). Discovery filters on it. */
  stage: `${TAG_PREFIX}:stage`,
  /** Pool name; a value not in the config makes the instance an orphan. */
  pool: `${TAG_PREFIX}:pool`,
  /** Id of the reconcile pass that launched it (adoption after a crash, in-flight accounting). */
  pass: `${TAG_PREFIX}:pass`,
  /** ISO 8601 instant the controller launched it (the controller's clock, not EC2's LaunchTime). */
  launchedAt: `${TAG_PREFIX}:launched-at`,
  /** Launch template version (a number) it was launched from; idle workers of an older version are retired. */
  templateVersion: `${TAG_PREFIX}:template-version`,

  // ---- set by the controller later ------------------------------------------------------------
  /** Retirement request: ISO 8601 instant of the request. The worker finishes its job, then leaves. */
  retire: `${TAG_PREFIX}:retire`,

  // ---- set by the interruption handler (markInterrupted) --------------------------------------
  /** `interruption <ISO>` or `rebalance <ISO>`: AWS is (or may soon be) reclaiming the instance. */
  interrupted: `${TAG_PREFIX}:interrupted`,

  // ---- set by the worker on its own instance --------------------------------------------------
  /** ISO 8601 instant gitlab-runner became ready to take jobs. Absent = still booting. */
  ready: `${TAG_PREFIX}:ready`,
  /** `idle` | `busy` | `draining` (the worker is leaving: retirement, interruption, MaxBuilds, IdleTime). */
  state: `${TAG_PREFIX}:state`,
  /** Builds run so far, a decimal integer (MaxBuilds). */
  builds: `${TAG_PREFIX}:builds`,
  /** ISO 8601 instant the worker last became idle (IdleTime). */
  idleSince: `${TAG_PREFIX}:idle-since`,
} as const;

/** Values of TAGS.state the worker may set. */
export const WORKER_STATES = ['idle', 'busy', 'draining'] as const;
export type WorkerReportedState = (typeof WORKER_STATES)[number];

export type InterruptionKind = 'interruption' | 'rebalance';

export function formatInterrupted(kind: InterruptionKind, at: number): string {
  return `${kind} ${new Date(at).toISOString()}`;
}

export function parseInterrupted(value: string | undefined): { kind: InterruptionKind; at: number } | undefined {
  const m = /^(interruption|rebalance) (\S+)$/.exec(value ?? '');
  if (!m) return undefined;
  const at = Date.parse(m[2]);
  return Number.isFinite(at) ? { kind: m[1] as InterruptionKind, at } : undefined;
}

/** An ISO 8601 tag value as epoch ms; undefined when absent or unreadable (a worker bug must not crash a pass). */
export function parseInstant(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : undefined;
}

/** Name of the launch template of a pool; the deployment's CloudFormation creates it under this name. */
export function launchTemplateName(deployment: string, stage: string, pool: string): string {
  return `${TAG_PREFIX}-${deployment}-${stage}-${pool}`;
}
