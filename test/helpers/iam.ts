/**
 * A small IAM policy evaluator for the template tests: enough of the documented evaluation logic
 * (explicit deny > allow > implicit deny; Action/Resource wildcards; the condition operators the
 * stack uses, with IAM's rules for absent keys and policy variables) to ask "is this request
 * allowed by this role's statements?". The request contexts the tests build say which condition
 * keys each action offers on each resource type (Service Authorization Reference for EC2); a grant
 * that needs a key the real request lacks then fails here as it would in AWS.
 */

export type Context = Record<string, string | string[] | undefined>;
export interface AwsRequest {
  action: string;
  resource: string;
  context?: Context;
}

/** How the tests resolve CloudFormation intrinsics: logical id (or id.attribute) -> value. */
export interface TemplateEnv {
  partition: string;
  region: string;
  account: string;
  refs: Record<string, string>;
}

/** A template value (string, Fn::Sub, Fn::GetAtt, Ref, lists of them) as CloudFormation would resolve it. */
export function resolve(v: unknown, env: TemplateEnv): unknown {
  if (Array.isArray(v)) return v.map((x) => resolve(x, env));
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Fn::Sub' in o)
      return String(o['Fn::Sub']).replace(/\$\{(!?)([^}]+)\}/g, (_m, bang: string, name: string) => {
        if (bang) return '${' + name + '}'; // ${!x} is a literal ${x}: an IAM policy variable
        if (name === 'AWS::Partition') return env.partition;
        if (name === 'AWS::Region') return env.region;
        if (name === 'AWS::AccountId') return env.account;
        const value = env.refs[name];
        if (value === undefined) throw new Error(`unresolved \${${name}}`);
        return value;
      });
    if ('Fn::GetAtt' in o) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      const value = env.refs[`${id}.${attr}`];
      if (value === undefined) throw new Error(`unresolved GetAtt ${id}.${attr}`);
      return value;
    }
    if ('Ref' in o) {
      const value = env.refs[String(o.Ref)];
      if (value === undefined) throw new Error(`unresolved Ref ${String(o.Ref)}`);
      return value;
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, resolve(x, env)]));
  }
  return v;
}

const glob = (pattern: string, value: string) =>
  new RegExp(
    '^' +
      pattern
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
    'i',
  ).test(value);
const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** Policy variables (${aws:SourceVpc}) take the request's value; an absent key leaves nothing to match. */
function substitute(pattern: string, ctx: Context): string {
  return pattern.replace(/\$\{([^}]+)\}/g, (_m, key: string) => String(list(ctx[key])[0] ?? ''));
}

function conditionHolds(op: string, key: string, wanted: unknown, ctx: Context): boolean {
  const present = ctx[key] !== undefined;
  const values = list(ctx[key]).map(String);
  const patterns = list(wanted as string | string[]).map((w) => substitute(String(w), ctx));
  const ifExists = op.endsWith('IfExists');
  const base = op.replace(/IfExists$/, '');
  if (!present && ifExists) return true;
  switch (base) {
    case 'StringEquals':
    case 'ArnEquals':
      return present && values.some((v) => patterns.includes(v));
    case 'StringLike':
    case 'ArnLike':
      return present && values.some((v) => patterns.some((p) => glob(p, v)));
    case 'StringNotEquals':
      // Negated operators hold when the key is absent (IAM user guide, condition operators).
      return !present || values.every((v) => !patterns.includes(v));
    case 'StringNotLike':
      return !present || values.every((v) => !patterns.some((p) => glob(p, v)));
    case 'ForAllValues:StringEquals':
      return values.every((v) => patterns.includes(v));
    case 'ForAnyValue:StringEquals':
      return values.some((v) => patterns.includes(v));
    case 'Bool':
      return present && values.some((v) => patterns.includes(v));
    case 'Null':
      return patterns.includes(present ? 'false' : 'true');
    default:
      throw new Error(`condition operator ${op} is not modelled`);
  }
}

function matches(statement: Record<string, any>, req: AwsRequest): boolean {
  const ctx = req.context ?? {};
  if (statement.NotAction !== undefined) {
    if (list<string>(statement.NotAction).some((a) => glob(a, req.action))) return false;
  } else if (!list<string>(statement.Action).some((a) => glob(a, req.action))) return false;
  // Policy variables in Resource take the request's values too (a log stream named by the caller's address).
  if (statement.NotResource !== undefined) {
    if (list<string>(statement.NotResource).some((r) => glob(substitute(r, ctx), req.resource))) return false;
  } else if (!list<string>(statement.Resource).some((r) => glob(substitute(r, ctx), req.resource))) return false;
  for (const [op, block] of Object.entries((statement.Condition ?? {}) as Record<string, Record<string, unknown>>))
    for (const [key, wanted] of Object.entries(block)) if (!conditionHolds(op, key, wanted, ctx)) return false;
  return true;
}

/**
 * The outcome of one request against a role's (resolved) statements, and a resource policy's
 * (a bucket policy: its Principal is not modelled, so its statements must key on aws:PrincipalArn).
 */
export function evaluate(statements: Record<string, any>[], req: AwsRequest): 'allow' | 'deny' | 'implicit-deny' {
  if (statements.some((s) => s.Effect === 'Deny' && matches(s, req))) return 'deny';
  return statements.some((s) => s.Effect === 'Allow' && matches(s, req)) ? 'allow' : 'implicit-deny';
}
