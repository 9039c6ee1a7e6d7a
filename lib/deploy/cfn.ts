/** CloudFormation intrinsic functions as plain objects, shared by the stack's modules (stack.ts, image.ts). */
export type Cfn = Record<string, unknown>;

export const sub = (s: string): Cfn => ({ 'Fn::Sub': s });
export const ref = (id: string): Cfn => ({ Ref: id });
export const getAtt = (id: string, attr: string): Cfn => ({ 'Fn::GetAtt': [id, attr] });
