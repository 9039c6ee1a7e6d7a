/**
 * What a pool's worker role may be given on top of the project's own statements (`worker.iam`,
 * amazonec2-iam-instance-profile's replacement).
 *
 * Job containers cannot reach the role (IMDS hop limit 1), but a privileged job, a job on the host
 * network or one with the docker socket can: whatever the role may do, such a job may do. So the
 * extras must not reach the deployment's control plane: IAM (a new role, PassRole), other roles
 * (sts:AssumeRole on any role), other workers and the fleet (their tags, termination, metadata
 * options, launch templates, SSM commands). The controller's and other pools' SSM parameters are
 * protected by an explicit Deny in the role (lib/deploy/stack.ts, OthersParameters), which also
 * holds against managed policies this module cannot read.
 *
 * IAM matches actions case-insensitively, with `*` (any run of characters) and `?` (one) in
 * patterns (IAM user guide, "IAM JSON policy elements: Action"; "Resource"). Pure: no AWS.
 */

/** True when an IAM pattern (`*`, `?` wildcards) matches `value`. */
export function iamGlob(pattern: string, value: string, ignoreCase = true): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, ignoreCase ? 'is' : 's').test(value);
}

/** True when an action pattern can grant an action of `service` (`*:*`, `i*:*`, `IAM:Get*` all reach iam). */
function reachesService(pattern: string, service: string): boolean {
  const colon = pattern.indexOf(':');
  return colon < 0 ? iamGlob(pattern, `${service}:x`) : iamGlob(pattern.slice(0, colon), service);
}

/** Actions on other workers, the fleet's launch configuration, or the controller. */
const FLEET_CONTROL = [
  'ec2:CreateTags', // the controller's state tags of any worker: retire, ready, pool ...
  'ec2:DeleteTags',
  'ec2:TerminateInstances',
  'ec2:StopInstances',
  'ec2:RebootInstances',
  'ec2:ModifyInstanceAttribute', // user data, instance type, shutdown behaviour
  'ec2:ModifyInstanceMetadataOptions', // a hop limit of 2 lets every job container reach the role
  'ec2:AssociateIamInstanceProfile',
  'ec2:ReplaceIamInstanceProfileAssociation',
  'ec2:RunInstances',
  'ec2:CreateFleet',
  'ec2:CreateLaunchTemplateVersion', // another pool's user data, hence its token and role
  'ec2:ModifyLaunchTemplate',
  'ec2:DeleteLaunchTemplate',
  'ssm:SendCommand', // a shell on other workers, whose config.toml holds their token
  'ssm:StartSession',
  'lambda:UpdateFunctionCode', // code run with the controller's role (which may pass worker roles)
  'lambda:UpdateFunctionConfiguration',
  'cloudformation:UpdateStack', // the deployment itself
  'cloudformation:CreateChangeSet',
];

const ASSUME_ROLE = ['sts:AssumeRole', 'sts:AssumeRoleWithWebIdentity', 'sts:AssumeRoleWithSAML'];

/** A Resource that names no particular role: `*`, `arn:aws:iam::123456789012:role/*`, `arn:*:iam::*:role/*`. */
function anyRole(resource: string): boolean {
  const parts = resource.split(':');
  const partition = parts[1] ?? 'aws';
  const account = parts[4] ?? '123456789012';
  return iamGlob(resource, `arn:${partition}:iam::${account}:role/gsa-probe/any-role`, false);
}

export interface IamStatementInput {
  Effect?: unknown;
  Action?: unknown;
  Resource?: unknown;
}

/** Why the statement cannot be on a worker role (one message per offending action), or []. */
export function statementProblems(st: IamStatementInput): string[] {
  if (st.Effect !== 'Allow') return [];
  const problems: string[] = [];
  const strings = (x: unknown) => [x].flat().filter((v): v is string => typeof v === 'string');
  const resources = strings(st.Resource);
  for (const action of strings(st.Action)) {
    const a = JSON.stringify(action);
    if (reachesService(action, 'iam')) {
      problems.push(`Action ${a} grants iam:* actions (iam:PassRole, iam:CreateRole ...): the worker role must not change IAM or hand out roles`);
      continue;
    }
    const fleet = FLEET_CONTROL.find((x) => iamGlob(action, x));
    if (fleet) {
      problems.push(
        `Action ${a} grants ${fleet}: the worker role must not act on other workers, the fleet or the controller (their tags, termination, metadata options, launch templates, commands, the controller's functions and stack); each worker already tags its own instance`,
      );
      continue;
    }
    const assume = ASSUME_ROLE.find((x) => iamGlob(action, x));
    const broad = resources.find(anyRole);
    if (assume && broad !== undefined)
      problems.push(`Action ${a} on Resource ${JSON.stringify(broad)} lets the worker become any role that trusts the account; name the role ARNs it needs (e.g. the cache's RoleARN)`);
  }
  return problems;
}

/**
 * AWS managed policies that give the worker role the control plane (IAM, every instance, every
 * SSM command): refused by name. A customer managed policy cannot be read here; its grants on the
 * deployment's parameters are denied by the role itself (OthersParameters).
 */
const REFUSED_MANAGED: Record<string, string> = {
  AdministratorAccess: 'every action, IAM included',
  PowerUserAccess: 'every action but IAM: every instance, function and parameter of the account',
  IAMFullAccess: 'IAM',
  AmazonEC2FullAccess: 'every EC2 action: other workers\' tags, termination, metadata options, launch templates',
  AmazonSSMFullAccess: 'every SSM action: commands on other workers, every parameter',
  'job-function/SystemAdministrator': 'EC2, SSM commands and iam:PassRole',
  'job-function/NetworkAdministrator': 'EC2 networking of every instance',
};

export function managedPolicyProblem(arn: string): string | undefined {
  const name = /^arn:aws(?:-cn|-us-gov)?:iam::aws:policy\/(.+)$/.exec(arn)?.[1];
  if (name === undefined || !Object.prototype.hasOwnProperty.call(REFUSED_MANAGED, name)) return undefined;
  return `${name} grants ${REFUSED_MANAGED[name]}; a privileged job can use the worker role, so it must not reach the deployment's control plane — attach a policy with what the worker host needs (e.g. AmazonEC2ContainerRegistryReadOnly)`;
}
