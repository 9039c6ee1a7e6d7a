/**
 * How the template tests resolve the stack built from samples/config.yaml (test/helpers/iam.ts
 * resolve): the account, region and the values of the resources its policies refer to.
 */
import type { TemplateEnv } from './iam';

export const ACCOUNT = '123456789012';
export const SAMPLE_ENV: TemplateEnv = {
  partition: 'aws',
  region: 'eu-central-1',
  account: ACCOUNT,
  refs: {
    LaunchTemplateGeneral: 'lt-0general',
    LaunchTemplateHeavy: 'lt-0heavy',
    'WorkerSecurityGroup.GroupId': 'sg-0own',
    'CacheBucket.Arn': 'arn:aws:s3:::acme-ci-prod-cachebucket-1',
    CacheBucket: 'acme-ci-prod-cachebucket-1',
    'WorkerRoleGeneral.Arn': `arn:aws:iam::${ACCOUNT}:role/worker-general`,
    'WorkerRoleHeavy.Arn': `arn:aws:iam::${ACCOUNT}:role/worker-heavy`,
    'EventQueue.Arn': `arn:aws:sqs:eu-central-1:${ACCOUNT}:events`,
    'WorkerReportQueue.Arn': `arn:aws:sqs:eu-central-1:${ACCOUNT}:gsa-acme-ci-prod-worker-reports`,
    'EventDeadLetterQueue.Arn': `arn:aws:sqs:eu-central-1:${ACCOUNT}:dead-letters`,
  },
};
