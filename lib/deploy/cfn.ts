/** CloudFormation intrinsic functions as plain objects, shared by the stack's modules (stack.ts, image.ts). */
export type Cfn = Record<string, unknown>;

export const sub = (s: string): Cfn => ({ 'Fn::Sub': s });
export const ref = (id: string): Cfn => ({ Ref: id });
export const getAtt = (id: string, attr: string): Cfn => ({ 'Fn::GetAtt': [id, attr] });

const logsArn = (fn: string) => sub(`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${fn}:*`);

/** A Lambda function's role: its own log group, and `statements`. */
export function lambdaRole(fn: string, statements: Cfn[]): Cfn {
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      Policies: [
        {
          PolicyName: 'least-privilege',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [{ Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: logsArn(fn) }, ...statements],
          },
        },
      ],
    },
  };
}
