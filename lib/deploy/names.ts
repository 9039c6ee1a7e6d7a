/**
 * Names that follow from a deployment's name and stage alone: its CloudFormation stack and its
 * Lambda functions. Serverless commands that act on a deployed stack without building it
 * (`info`, `logs`, `invoke`, `remove`) need only these, so they work without the config file
 * (lib/deploy/serverless-vars.js); `buildStack` uses the same function, so the names cannot drift.
 */

/** The config's rule for `deployment` (lib/config.ts), repeated where no config is parsed. */
export const DEPLOYMENT_RE = /^[a-z0-9][a-z0-9-]{0,30}$/;
/** Stages go into function and resource names (64-character limits). */
export const STAGE_RE = /^[a-z0-9][a-z0-9-]{0,15}$/;

export interface DeploymentNames {
  stackName: string;
  functionNames: { webhook: string; reconcile: string; interruption: string };
}

export function deploymentNames(deployment: string, stage: string): DeploymentNames {
  const prefix = `gsa-${deployment}-${stage}`;
  return {
    stackName: `gitlab-spot-autoscaler-${deployment}-${stage}`,
    functionNames: { webhook: `${prefix}-webhook`, reconcile: `${prefix}-reconcile`, interruption: `${prefix}-interruption` },
  };
}

/**
 * The Sids of the reconcile role's launch statements (lib/deploy/stack.ts launchStatements). A launch
 * that IAM refuses names them in its error (lib/aws/ec2-fleet.ts), so an operator knows which
 * statement to look at; docs/deployment.md, "A refused launch", says how to find the one and fix it.
 */
export const LAUNCH_STATEMENTS = {
  resources: 'LaunchFromOwnTemplatesSubnetsGroupsImages',
  fleetInstances: 'FleetLaunchesOnlyTaggedWorkersOfConfiguredTypes',
  runInstances: 'RunOnlyTaggedWorkersOfConfiguredTypesFromOwnTemplates',
} as const;
