/**
 * Pre-built worker images (`worker.image: prebuilt`, the default; docs/worker.md, "Pre-built images";
 * docs/deployment.md, "Worker images"). Per pool, an EC2 Image Builder pipeline in the stack:
 *
 *  - a component that runs the worker script in its build mode (`build-image`,
 *    lib/worker/userdata.ts renderImageBuildScript): docker, the pool's gitlab-runner release checked
 *    against its release.sha256, the job and helper images pulled, and the marker a boot looks for;
 *  - a recipe on the pool's `ami` (an AMI id, or AWS's public parameter, read by Image Builder at
 *    each build so a rebuild starts from the current base), with a 16 GiB encrypted root;
 *  - an infrastructure configuration: a build instance of the pool's types in its first subnet,
 *    with a role that can run Image Builder's agent and reads none of the deployment's secrets;
 *  - a distribution that writes the new AMI id into the pool's SSM parameter (which the launch
 *    template reads with `resolve:ssm:`) and adds a launch template version with it, so the
 *    controller retires idle workers of the older image through its fence;
 *  - a weekly schedule (security updates of the base), and a build started by the deploy itself
 *    whenever what the image holds changed (a custom resource; see IMAGE_BUILDS_HANDLER);
 *  - a lifecycle policy that deletes all but the newest IMAGES_KEPT images with their snapshots.
 *
 * The SSM parameter is created by the stack with the base AMI, so a pool launches from the first
 * deploy on, before any image exists, and whenever a build fails (an alarm says so).
 * Pure: no AWS calls.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Config, Pool } from '../config';
import { PREBUILT_ROOT_GIB } from '../config';
import { renderImageBuildScript } from '../worker/userdata';
import { getAtt, lambdaRole, ref, sub, type Cfn } from './cfn';

/** Weekly rebuild: Sunday 03:00 UTC (Image Builder schedules are UTC cron). */
export const IMAGE_SCHEDULE = 'cron(0 3 ? * sun *)';
/** Images (AMIs and their snapshots) kept per pool: the newest, and two to go back to. */
export const IMAGES_KEPT = 3;
/** AWS::ImageBuilder::Component Data is at most 16,000 characters (CloudFormation resource schema). */
export const COMPONENT_DATA_LIMIT = 16_000;
/** Tag on the build instance and the AMIs: which pool's image it is. Not a key the controller discovers by. */
export const IMAGE_TAG = 'gitlab-spot-autoscaler:image-of';
/** Namespace of the image-build metrics (the same as the controller's, lib/lambda/metrics.ts). */
const METRIC_NAMESPACE = 'GitLabSpotAutoscaler';

export class ImageError extends Error {
  override name = 'ImageError';
}

export function usesPrebuiltImage(pool: Pool): boolean {
  return pool.worker.image === 'prebuilt';
}

/** The function that starts builds at deploy time and reports finished ones. */
export function imageBuildsFunctionName(deployment: string, stage: string): string {
  return `gsa-${deployment}-${stage}-images`;
}

/** Name of the pool's component, recipe, configurations and pipeline. */
export function imageName(deployment: string, stage: string, pool: string): string {
  return `gsa-${deployment}-${stage}-${pool}`;
}

/**
 * The SSM parameter that holds the pool's current AMI id. Under /imagebuilder/: Image Builder's
 * service-linked role may write parameters there (and only there: AWSServiceRoleForImageBuilder
 * grants ssm:PutParameter on parameter/imagebuilder/*), so the distribution needs no role of ours.
 */
export function imageParameterName(config: Config, stage: string, pool: string): string {
  return `/imagebuilder${config.ssmPrefix}/${config.deployment}/${stage}/ami/${pool}`;
}

/** What the pool's launch template names as its image: its image parameter when pre-built, else `ami` as configured. */
export function launchImageId(config: Config, stage: string, pool: Pool, enabled = true): string {
  return enabled && usesPrebuiltImage(pool) ? `resolve:ssm:${imageParameterName(config, stage, pool.name)}` : pool.worker.ami;
}

/** The recipe's parent: an AMI id, or an SSM parameter Image Builder reads when it builds (`ssm:NAME`). */
export function parentImage(pool: Pool): string {
  const ami = pool.worker.ami;
  return ami.startsWith('resolve:ssm:') ? `ssm:${ami.slice('resolve:ssm:'.length)}` : ami;
}

/** The base AMI as CloudFormation writes it into the image parameter before the first build. */
function baseAmiValue(pool: Pool): string {
  const ami = pool.worker.ami;
  return ami.startsWith('resolve:ssm:') ? `{{resolve:ssm:${ami.slice('resolve:ssm:'.length)}}}` : ami;
}

/** A semantic version Image Builder accepts (each part < 2^30) that changes with `text`. */
function contentVersion(text: string): string {
  const h = createHash('sha256').update(text).digest();
  return `1.${h.readUInt32BE(0) % 2 ** 30}.${h.readUInt32BE(4) % 2 ** 30}`;
}

/**
 * The component document (AWSTOE YAML): the build script travels gzip-compressed in base64 (the
 * document may hold 16,000 characters) and runs as `build-image`; the validate phase checks the
 * marker and the runner release the image claims.
 */
export function componentDocument(config: Config, pool: Pool, stage: string): string {
  const script = renderImageBuildScript({ config, pool, stage });
  // One line: the document's indentation would otherwise cost a sixth of it.
  const b64 = gzipSync(Buffer.from(script, 'utf8'), { level: 9 }).toString('base64');
  const indent = (text: string, n: number) => text.replace(/^(?=.)/gm, ' '.repeat(n));
  const name = imageName(config.deployment, stage, pool.name);
  const build = ['set -eu', 'f=$(mktemp)', `printf %s '${b64}' | base64 -d | gunzip >"$f"`, 'bash "$f" build-image', 'rm -f "$f"'].join('\n');
  const runner = pool.worker.runnerVersion ?? /RUNNER_VERSION='(v[\d.]+)'/.exec(script)![1];
  const validate = ['set -eu', 'grep -qx "runner=' + runner + '" /etc/gsa-worker-image', 'PATH=$PATH:/usr/local/bin gitlab-runner --version | grep -q "Version: *' + runner.slice(1) + '$"', 'docker --version'].join('\n');
  const doc = [
    `name: ${name}`,
    `description: gitlab-spot-autoscaler worker image of pool ${pool.name} (docker, gitlab-runner ${runner}, its job and helper images)`,
    'schemaVersion: 1.0',
    'phases:',
    '  - name: build',
    '    steps:',
    '      - name: BuildWorkerImage',
    '        action: ExecuteBash',
    '        inputs:',
    '          commands:',
    '            - |',
    indent(build, 14),
    '  - name: validate',
    '    steps:',
    '      - name: CheckWorkerImage',
    '        action: ExecuteBash',
    '        inputs:',
    '          commands:',
    '            - |',
    indent(validate, 14),
    '',
  ].join('\n');
  if (doc.length > COMPONENT_DATA_LIMIT)
    throw new ImageError(`the image build of pool "${pool.name}" is ${doc.length} characters as an Image Builder component, over its ${COMPONENT_DATA_LIMIT}: a shorter worker.caCertificate, or worker.image: base`);
  return doc;
}

/** What keeps a pre-built pool's image from being built (the component's size), one line per pool: `validate` reports it. */
export function imageProblems(config: Config, stage = 'dev'): string[] {
  const problems: string[] = [];
  config.pools.forEach((pool, i) => {
    if (!usesPrebuiltImage(pool)) return;
    try {
      componentDocument(config, pool, stage);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      problems.push(`pools[${i}] (${pool.name}): ${e.message}`);
    }
  });
  return problems;
}

/**
 * The function behind the deploy-time build trigger and the build notifications (inline code:
 * Lambda's Node.js runtime provides the AWS SDK v3). Two kinds of event:
 *  - a CloudFormation custom resource (Custom::WorkerImageBuild, one per pool, whose properties
 *    change when the recipe or the base does): Create and Update start the pipeline, Delete does
 *    nothing. It always answers SUCCESS: a build that cannot start must not roll the deployment
 *    back; the pool boots from its last image (or the base AMI) and the error is logged;
 *  - EventBridge's "EC2 Image Builder Image State Change" for the deployment's images: an
 *    AVAILABLE or FAILED build is logged and counted (EMF: ImageBuilds, ImageBuildFailures per
 *    Deployment/Stage/Pool and per Deployment/Stage), which the failure alarm watches.
 */
export const IMAGE_BUILDS_HANDLER = `const { ImagebuilderClient, StartImagePipelineExecutionCommand } = require('@aws-sdk/client-imagebuilder');
const ib = new ImagebuilderClient({});
const env = process.env;
const pools = JSON.parse(env.RECIPES || '{}');
const log = (level, msg, extra) => console.log(JSON.stringify({ level, msg, ...extra }));
function metric(pool, ok) {
  console.log(JSON.stringify({ _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: env.NAMESPACE, Dimensions: [['Deployment', 'Stage', 'Pool'], ['Deployment', 'Stage']], Metrics: [{ Name: 'ImageBuilds', Unit: 'Count' }, { Name: 'ImageBuildFailures', Unit: 'Count' }] }] }, Deployment: env.DEPLOYMENT, Stage: env.STAGE, Pool: pool, ImageBuilds: ok ? 1 : 0, ImageBuildFailures: ok ? 0 : 1 }));
}
exports.handler = async (event) => {
  if (event['detail-type']) {
    const arn = (event.resources || [])[0] || '';
    const pool = pools[(arn.split(':image/')[1] || '').split('/')[0]];
    const status = event.detail && event.detail.state && event.detail.state.status;
    if (!pool || (status !== 'AVAILABLE' && status !== 'FAILED')) return;
    if (status === 'FAILED') log('error', 'worker image build failed; the pool keeps booting from its last image (or its base AMI): see the build log in /aws/imagebuilder/', { pool, image: arn, reason: event.detail.state.reason });
    else log('info', 'worker image built; new launches use it, idle workers of the older image are retired', { pool, image: arn });
    metric(pool, status === 'AVAILABLE');
    return;
  }
  let reason = 'nothing to do';
  if (event.RequestType === 'Create' || event.RequestType === 'Update') {
    try {
      const out = await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: event.ResourceProperties.PipelineArn, clientToken: event.RequestId }));
      reason = 'started ' + out.imageBuildVersionArn;
      log('info', 'worker image build started', { pipeline: event.ResourceProperties.PipelineArn, image: out.imageBuildVersionArn });
    } catch (e) {
      reason = ('could not start the worker image build (the pool boots from its last image or its base AMI; the weekly schedule retries): ' + e.name + ': ' + e.message).slice(0, 500);
      log('error', reason, { pipeline: event.ResourceProperties.PipelineArn });
    }
  }
  const body = JSON.stringify({ Status: 'SUCCESS', Reason: reason, PhysicalResourceId: event.PhysicalResourceId || event.LogicalResourceId + '-build', StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId });
  await fetch(event.ResponseURL, { method: 'PUT', headers: { 'content-type': '' }, body });
};
`;

export interface ImageContext {
  config: Config;
  stage: string;
  /** Logical id suffix per pool (stack.ts). */
  poolIds: Map<string, string>;
  /** The pool's launch template's logical id. */
  launchTemplateId: (pool: Pool) => string;
  /** The security groups the pool's workers get (the build instance gets the same). */
  securityGroups: (pool: Pool) => unknown[];
  /** The pool's AMI root device (the recipe's root volume replaces it). */
  rootDeviceName: (pool: Pool) => string;
  /** Deny statements on every secret and the state of the deployment (stack.ts otherSecretsDeny, no pool's own). */
  secretsDeny: Cfn[];
  /** The managed policy every worker role carries (WorkerGuard): no IAM, no other workers, no control plane. */
  guardPolicy: unknown;
  /** The deployment's alarm topic. */
  alarmTopic: unknown;
  /** Name of the function that starts builds and reports them. */
  functionName: string;
}

const ARN = (service: string, resource: string, account = '${AWS::AccountId}') => sub(`arn:\${AWS::Partition}:${service}:\${AWS::Region}:${account}:${resource}`);

/**
 * The pools' image pipelines and what they share. Returns nothing when no pool is pre-built.
 */
export function imageResources(ctx: ImageContext): { resources: Record<string, Cfn>; outputs: Record<string, Cfn> } {
  const { config, stage } = ctx;
  const pools = config.pools.filter(usesPrebuiltImage);
  const resources: Record<string, Cfn> = {};
  const outputs: Record<string, Cfn> = {};
  if (!pools.length) return { resources, outputs };
  const tags = { 'gitlab-spot-autoscaler:deployment': config.deployment, 'gitlab-spot-autoscaler:stage': stage };
  const prefix = imageName(config.deployment, stage, '');

  // ---- the build instance: runs Image Builder's agent and the component; reads no secret --------
  resources.ImageBuilderRole = {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `gitlab-spot-autoscaler image builds of ${config.deployment}/${stage}: Image Builder's agent, no secret of the deployment`,
      AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      // What Image Builder documents for a build instance's profile (user guide, "Image Builder
      // prerequisites": EC2InstanceProfileForImageBuilder and AmazonSSMManagedInstanceCore), and the
      // workers' guard. AmazonSSMManagedInstanceCore allows ssm:GetParameter on every parameter:
      // the Deny below keeps the runner tokens, job secrets, webhook secret, API token, config and
      // state out of reach (a Deny outranks it), as for the workers.
      ManagedPolicyArns: [sub('arn:${AWS::Partition}:iam::aws:policy/EC2InstanceProfileForImageBuilder'), sub('arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore'), ctx.guardPolicy],
      Policies: [{ PolicyName: 'no-secrets', PolicyDocument: { Version: '2012-10-17', Statement: ctx.secretsDeny } }],
    },
  };
  resources.ImageBuilderInstanceProfile = { Type: 'AWS::IAM::InstanceProfile', Properties: { Roles: [ref('ImageBuilderRole')] } };

  // ---- lifecycle: keep the newest IMAGES_KEPT images per pool, delete the rest with their snapshots
  resources.ImageLifecycleRole = {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `gitlab-spot-autoscaler: deletes old worker images of ${config.deployment}/${stage}`,
      AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'imagebuilder.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      Policies: [
        {
          PolicyName: 'delete-old-images',
          PolicyDocument: {
            Version: '2012-10-17',
            // What AWS's EC2ImageBuilderLifecycleExecutionPolicy grants for AMI deletion, narrowed
            // to images and snapshots Image Builder created and to this deployment's image records.
            Statement: [
              { Sid: 'DeregisterBuiltImages', Effect: 'Allow', Action: ['ec2:DeregisterImage', 'ec2:DescribeImageAttribute'], Resource: sub('arn:${AWS::Partition}:ec2:*::image/*'), Condition: { StringEquals: { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' } } },
              { Sid: 'DeleteBuiltSnapshots', Effect: 'Allow', Action: ['ec2:DeleteSnapshot'], Resource: sub('arn:${AWS::Partition}:ec2:*::snapshot/*'), Condition: { StringEquals: { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' } } },
              { Sid: 'FindImages', Effect: 'Allow', Action: ['ec2:DescribeImages', 'tag:GetResources'], Resource: '*' },
              { Sid: 'DeleteOwnImageRecords', Effect: 'Allow', Action: ['imagebuilder:DeleteImage'], Resource: ARN('imagebuilder', `image/${prefix}*`) },
            ],
          },
        },
      ],
    },
  };

  // ---- the function that starts builds at deploy time and reports finished ones -----------------
  const recipes: Record<string, string> = {};
  for (const pool of pools) recipes[imageName(config.deployment, stage, pool.name)] = pool.name;
  resources.ImageBuildsLogGroup = { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: `/aws/lambda/${ctx.functionName}`, RetentionInDays: 30 } };
  resources.ImageBuildsRole = lambdaRole(ctx.functionName, [
    { Sid: 'StartOwnPipelines', Effect: 'Allow', Action: ['imagebuilder:StartImagePipelineExecution'], Resource: pools.map((p) => ARN('imagebuilder', `image-pipeline/${imageName(config.deployment, stage, p.name)}`)) },
  ]);
  resources.ImageBuildsFunction = {
    Type: 'AWS::Lambda::Function',
    DependsOn: ['ImageBuildsLogGroup'],
    Properties: {
      FunctionName: ctx.functionName,
      Description: 'Starts a worker image build when the deploy changed what an image holds; logs and counts finished builds',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 128,
      Timeout: 30,
      Role: getAtt('ImageBuildsRole', 'Arn'),
      Environment: { Variables: { DEPLOYMENT: config.deployment, STAGE: stage, NAMESPACE: METRIC_NAMESPACE, RECIPES: JSON.stringify(recipes) } },
      Code: { ZipFile: IMAGE_BUILDS_HANDLER },
    },
  };
  resources.ImageBuildsRule = {
    Type: 'AWS::Events::Rule',
    Properties: {
      Description: `finished worker image builds of ${config.deployment}/${stage}`,
      EventPattern: {
        source: ['aws.imagebuilder'],
        'detail-type': ['EC2 Image Builder Image State Change'],
        resources: [{ prefix: ARN('imagebuilder', `image/${prefix}`) }],
        detail: { state: { status: ['AVAILABLE', 'FAILED'] } },
      },
      Targets: [{ Id: 'image-builds', Arn: getAtt('ImageBuildsFunction', 'Arn') }],
    },
  };
  resources.ImageBuildsPermission = {
    Type: 'AWS::Lambda::Permission',
    Properties: { Action: 'lambda:InvokeFunction', FunctionName: ref('ImageBuildsFunction'), Principal: 'events.amazonaws.com', SourceArn: getAtt('ImageBuildsRule', 'Arn') },
  };
  resources.ImageBuildFailureAlarm = {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmDescription: `A worker image build of ${config.deployment}/${stage} failed: its pool boots from its last image, or installs at boot from its base AMI (slower). See /aws/imagebuilder/ and the ${ctx.functionName} log`,
      Namespace: METRIC_NAMESPACE,
      MetricName: 'ImageBuildFailures',
      Dimensions: [
        { Name: 'Deployment', Value: config.deployment },
        { Name: 'Stage', Value: stage },
      ],
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 1,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [ctx.alarmTopic],
    },
  };

  // ---- per pool ---------------------------------------------------------------------------------
  for (const pool of pools) {
    const id = ctx.poolIds.get(pool.name)!;
    const name = imageName(config.deployment, stage, pool.name);
    const parameter = imageParameterName(config, stage, pool.name);
    const document = componentDocument(config, pool, stage);
    const componentVersion = contentVersion(document);
    const parent = parentImage(pool);
    const device = ctx.rootDeviceName(pool);
    const recipeVersion = contentVersion(JSON.stringify([componentVersion, parent, device, PREBUILT_ROOT_GIB]));
    const poolTags = { ...tags, 'gitlab-spot-autoscaler:pool': pool.name };

    resources[`WorkerAmi${id}`] = {
      Type: 'AWS::SSM::Parameter',
      Properties: {
        Name: parameter,
        Type: 'String',
        DataType: 'aws:ec2:image',
        // The base AMI until the first image is built (then Image Builder's distribution writes it).
        Value: baseAmiValue(pool),
        Description: `AMI of pool ${pool.name} (${config.deployment}/${stage}): the base until the first pre-built image, then the newest image`,
      },
    };
    resources[`ImageComponent${id}`] = {
      Type: 'AWS::ImageBuilder::Component',
      // A changed component is a new version (the name and version are immutable); the old one is
      // kept, free, rather than deleted while images built from it still exist.
      UpdateReplacePolicy: 'Retain',
      DeletionPolicy: 'Delete',
      Properties: { Name: name, Version: componentVersion, Platform: 'Linux', Description: `worker image build of pool ${pool.name}`, Data: document, Tags: poolTags },
    };
    resources[`ImageRecipe${id}`] = {
      Type: 'AWS::ImageBuilder::ImageRecipe',
      UpdateReplacePolicy: 'Retain',
      DeletionPolicy: 'Delete',
      Properties: {
        Name: name,
        Version: recipeVersion,
        ParentImage: parent,
        Components: [{ ComponentArn: ref(`ImageComponent${id}`) }],
        BlockDeviceMappings: [{ DeviceName: device, Ebs: { VolumeSize: PREBUILT_ROOT_GIB, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true } }],
        Tags: poolTags,
      },
    };
    resources[`ImageInfrastructure${id}`] = {
      Type: 'AWS::ImageBuilder::InfrastructureConfiguration',
      Properties: {
        Name: name,
        Description: `build instance of pool ${pool.name}'s worker image`,
        InstanceProfileName: ref('ImageBuilderInstanceProfile'),
        InstanceTypes: pool.worker.instanceTypes,
        SubnetId: pool.worker.subnets[0],
        SecurityGroupIds: ctx.securityGroups(pool),
        TerminateInstanceOnFailure: true,
        InstanceMetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
        // Not the deployment's discovery tags: the controller must never take a build instance for a worker.
        ResourceTags: { [IMAGE_TAG]: `${config.deployment}/${stage}/${pool.name}` },
        Tags: poolTags,
      },
    };
    resources[`ImageDistribution${id}`] = {
      Type: 'AWS::ImageBuilder::DistributionConfiguration',
      Properties: {
        Name: name,
        Description: `worker image of pool ${pool.name}: AMI id into ${parameter}, and a new version of its launch template`,
        Distributions: [
          {
            Region: ref('AWS::Region'),
            AmiDistributionConfiguration: { Name: `${name}-{{ imagebuilder:buildDate }}`, AmiTags: { [IMAGE_TAG]: `${config.deployment}/${stage}/${pool.name}` } },
            SsmParameterConfigurations: [{ ParameterName: parameter, DataType: 'aws:ec2:image' }],
            LaunchTemplateConfigurations: [{ LaunchTemplateId: ref(ctx.launchTemplateId(pool)), SetDefaultVersion: true }],
          },
        ],
        Tags: poolTags,
      },
    };
    resources[`ImagePipeline${id}`] = {
      Type: 'AWS::ImageBuilder::ImagePipeline',
      // The parameter exists (with the base AMI) before the first build can distribute into it.
      DependsOn: [`WorkerAmi${id}`],
      Properties: {
        Name: name,
        Description: `worker image of pool ${pool.name} (${config.deployment}/${stage}); docs/deployment.md, "Worker images"`,
        ImageRecipeArn: ref(`ImageRecipe${id}`),
        InfrastructureConfigurationArn: ref(`ImageInfrastructure${id}`),
        DistributionConfigurationArn: ref(`ImageDistribution${id}`),
        Status: 'ENABLED',
        Schedule: { ScheduleExpression: IMAGE_SCHEDULE, PipelineExecutionStartCondition: 'EXPRESSION_MATCH_ONLY' },
        // The component's validate phase checks the image; a test instance would add minutes and cost per build.
        ImageTestsConfiguration: { ImageTestsEnabled: false },
        EnhancedImageMetadataEnabled: false,
        Tags: poolTags,
      },
    };
    resources[`ImageBuild${id}`] = {
      Type: 'Custom::WorkerImageBuild',
      Properties: {
        ServiceToken: getAtt('ImageBuildsFunction', 'Arn'),
        PipelineArn: ref(`ImagePipeline${id}`),
        // A new recipe (release, job image, base, build script) or a new base AMI starts a build.
        RecipeArn: ref(`ImageRecipe${id}`),
        RecipeVersion: recipeVersion,
        Base: baseAmiValue(pool),
      },
    };
    resources[`ImageLifecycle${id}`] = {
      Type: 'AWS::ImageBuilder::LifecyclePolicy',
      Properties: {
        Name: name,
        Description: `keeps the newest ${IMAGES_KEPT} worker images of pool ${pool.name}, deletes older ones with their snapshots`,
        ExecutionRole: getAtt('ImageLifecycleRole', 'Arn'),
        ResourceType: 'AMI_IMAGE',
        Status: 'ENABLED',
        PolicyDetails: [{ Action: { Type: 'DELETE', IncludeResources: { Amis: true, Snapshots: true } }, Filter: { Type: 'COUNT', Value: IMAGES_KEPT } }],
        ResourceSelection: { Recipes: [{ Name: name, SemanticVersion: 'x.x.x' }] },
        Tags: poolTags,
      },
    };
    outputs[`WorkerImage${id}`] = { Description: `pool ${pool.name}: SSM parameter with its current AMI (the image pipeline ${name} writes it)`, Value: parameter };
  }
  return { resources, outputs };
}
