/**
 * A second fuzz suite for the public webhook, built differently from fuzz.test.ts: fast-check
 * composes API Gateway HTTP API (payload 2.0) events from a grammar of what each part may look like
 * (headers as HTTP API delivers them, repeats joined by commas; cookies; rawQueryString;
 * requestContext shapes; bodies plain or base64 with and without padding; a JSON body built from
 * GitLab's job hook with one defect or one harmless variation), and a model says what the answer
 * must be. So besides the invariants (no 5xx, nothing queued without the secret, nothing echoed,
 * no secret logged) each request is checked for the right outcome: a well-formed authentic delivery
 * is queued with its job, project and status; a malformed authentic one gets the 4xx of its defect,
 * whose body names the field; a harmless variation is still queued.
 * FUZZ_SEED and FUZZ_RUNS change the seed and the count (defaults: 0x11fade, 3000).
 */
import fc from 'fast-check';
import { handler, resetForTests } from '../../handlers/webhook';
import { AwsServiceError } from '../../lib/aws/aws-json';
import { fakeAwsJson } from '../helpers/fake-aws-json';
import { clearRegisteredSecrets } from '../../lib/lambda/logger';
import { decodeQueueMessage, IGNORED_STATUSES, JOB_STATUSES } from '../../lib/webhook/job-hook';

const SECRET = 'Zq7xV2mK9pL4sR8wT1yB6nC3dF0gH5jA-model';
const SEED = Number(process.env.FUZZ_SEED ?? 0x11fade);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

// The webhook's AWS transport, faked (test/helpers/fake-aws-json.ts); retries run for real, without the waits.
const aws = fakeAwsJson();
const noWait = { sleep: async () => {}, random: Math.random };

// ---- the grammar ---------------------------------------------------------------------------------

/** How the X-Gitlab-Token header is presented; only `exact` is the secret. */
const TOKEN_FORMS = {
  exact: () => SECRET,
  absent: () => undefined,
  empty: () => '',
  padded: () => ` ${SECRET} `,
  trailingNewline: () => `${SECRET}\n`,
  repeated: () => `${SECRET},${SECRET}`, // HTTP API joins a repeated header with commas
  repeatedWithOther: () => `wrong,${SECRET}`,
  fullwidth: () => SECRET.replace(/[A-Za-z0-9]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)), // NFKC folds these to ASCII
  combining: () => SECRET.slice(0, 5) + '\u0301' + SECRET.slice(5), // NFC would compose it
  zeroWidth: () => SECRET.slice(0, 9) + '\u200d' + SECRET.slice(9),
  upper: () => SECRET.toUpperCase(),
  prefix: () => SECRET.slice(0, -1),
  longer: () => SECRET + 'x',
  sameLengthWrong: () => SECRET.slice(0, -1) + (SECRET.endsWith('l') ? 'm' : 'l'),
  bearer: () => `Bearer ${SECRET}`,
  huge: () => 'A'.repeat(9000),
} as const;
type TokenForm = keyof typeof TOKEN_FORMS;

const EVENT_FORMS: Record<string, string | undefined> = {
  exact: 'Job Hook',
  lower: 'job hook',
  repeated: 'Job Hook,Job Hook',
  pipeline: 'Pipeline Hook',
  absent: undefined,
  nbsp: 'Job\u00a0Hook',
};

/** Content-Type values and whether the webhook takes them (GitLab sends "application/json"). */
const CONTENT_TYPES: [string | undefined, boolean][] = [
  ['application/json', true],
  ['application/json; charset=utf-8', true],
  ['application/json;charset=UTF-8', true],
  ['Application/JSON', true],
  ['application/json ; charset=utf-16', true], // the body is decoded as UTF-8 whatever it says; harmless
  [undefined, true],
  ['text/plain', false],
  ['application/x-www-form-urlencoded', false],
  ['application/json,application/json', false], // a repeated header, joined
  ['text/json', false],
  ['', false],
];

/** A JSON number as text, and the value JSON.parse gives it. */
const NUMBER_TEXTS: [string, number][] = [
  ['42', 42],
  ['42.0', 42],
  ['4.2e1', 42],
  ['420E-1', 42],
  ['9007199254740991', 9007199254740991],
];

type Defect =
  | { kind: 'none' }
  | { kind: 'field'; field: 'object_kind' | 'build_id' | 'project_id' | 'build_status'; value: string }
  | { kind: 'json'; how: 'bom' | 'truncated' | 'trailing-garbage' | 'single-quotes' | 'nan' }
  | { kind: 'not-object'; text: string }
  | { kind: 'base64'; how: 'unpadded' | 'bad-alphabet' | 'whitespace' | 'url-safe' };

/** Field values a GitLab job hook never has, as JSON text. */
const BAD_FIELD_VALUES: Record<string, string[]> = {
  object_kind: ['"Build"', '"BUILD"', '"pipeline"', '"build "', 'null', '["build"]', '{"kind":"build"}', '"\\u0062uild\\u0000"'],
  build_id: ['-1', '0', '1.5', '1e400', '123456789012345678901234567890', '"42"', '"NaN"', 'null', 'true', '[42]', '{"id":42}', '-0', '9007199254740993'],
  project_id: ['-7', '0.5', '"7"', 'null', '1e999', '[]'],
  build_status: ['"PENDING"', '"Pending"', '"pending "', '"queued"', '""', 'null', '42', '["pending"]', '"__proto__"', '"constructor"'],
};

/** Variations GitLab might send or a proxy might add that change nothing. */
const HARMLESS = [
  'runner-null',
  'runner-object',
  'runner-tags-odd',
  'commit-nested',
  'commit-odd',
  'proto-key',
  'constructor-key',
  'extra-fields',
  'pipeline-junk',
  'retries-junk',
  'unicode-names',
  'whitespace',
  'duplicate-key-last-wins',
] as const;

interface Case {
  token: TokenForm;
  event: string;
  contentType: [string | undefined, boolean];
  status: string;
  jobIdText: [string, number];
  projectId: number;
  defect: Defect;
  harmless: (typeof HARMLESS)[number];
  base64: boolean;
  base64Flag: 'bool' | 'string' | 'absent';
  cookies: string[] | undefined;
  rawQueryString: string;
  requestContext: 'full' | 'absent' | 'no-http' | 'odd-ip' | 'string';
  idempotencyKey: string | undefined;
  extraHeaders: Record<string, string>;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  token: fc.oneof({ weight: 3, arbitrary: fc.constant<TokenForm>('exact') }, { weight: 2, arbitrary: fc.constantFrom(...(Object.keys(TOKEN_FORMS) as TokenForm[])) }),
  event: fc.oneof({ weight: 6, arbitrary: fc.constant('exact') }, { weight: 1, arbitrary: fc.constantFrom(...Object.keys(EVENT_FORMS)) }),
  contentType: fc.oneof({ weight: 4, arbitrary: fc.constant(CONTENT_TYPES[0]) }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
  status: fc.constantFrom(...JOB_STATUSES),
  jobIdText: fc.oneof(fc.constantFrom(...NUMBER_TEXTS), fc.integer({ min: 1, max: 2 ** 40 }).map((n): [string, number] => [String(n), n])),
  projectId: fc.integer({ min: 1, max: 10_000_000 }),
  defect: fc.oneof(
    { weight: 5, arbitrary: fc.constant<Defect>({ kind: 'none' }) },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom('object_kind', 'build_id', 'project_id', 'build_status')
        .chain((field) => fc.constantFrom(...BAD_FIELD_VALUES[field]).map((value): Defect => ({ kind: 'field', field: field as 'build_id', value }))),
    },
    { weight: 1, arbitrary: fc.constantFrom('bom', 'truncated', 'trailing-garbage', 'single-quotes', 'nan').map((how): Defect => ({ kind: 'json', how: how as 'bom' })) },
    { weight: 1, arbitrary: fc.constantFrom('[]', '"build"', '42', 'null', 'true', '[{"object_kind":"build"}]').map((text): Defect => ({ kind: 'not-object', text })) },
    { weight: 1, arbitrary: fc.constantFrom('unpadded', 'bad-alphabet', 'whitespace', 'url-safe').map((how): Defect => ({ kind: 'base64', how: how as 'unpadded' })) },
  ),
  harmless: fc.constantFrom(...HARMLESS),
  base64: fc.boolean(),
  base64Flag: fc.constantFrom('bool', 'bool', 'bool', 'string', 'absent'),
  cookies: fc.option(fc.array(fc.string({ maxLength: 300 }), { maxLength: 4 }), { nil: undefined }),
  rawQueryString: fc.oneof(fc.constant(''), fc.string({ maxLength: 200 }), fc.constant('a=' + 'b'.repeat(5000))),
  requestContext: fc.constantFrom('full', 'full', 'absent', 'no-http', 'odd-ip', 'string'),
  idempotencyKey: fc.option(fc.oneof(fc.uuid(), fc.string({ maxLength: 120 }), fc.constant('k'.repeat(500))), { nil: undefined }),
  extraHeaders: fc.dictionary(fc.constantFrom('user-agent', 'x-forwarded-for', 'cookie', 'x-gitlab-instance', 'x-gitlab-event-uuid', 'authorization', 'x-amzn-trace-id'), fc.string({ maxLength: 400 }), { maxKeys: 4 }),
});

// ---- building the event ------------------------------------------------------------------------

function bodyText(c: Case): string {
  const status = c.defect.kind === 'field' && c.defect.field === 'build_status' ? c.defect.value : JSON.stringify(c.status);
  const kind = c.defect.kind === 'field' && c.defect.field === 'object_kind' ? c.defect.value : '"build"';
  const jobId = c.defect.kind === 'field' && c.defect.field === 'build_id' ? c.defect.value : c.jobIdText[0];
  const projectId = c.defect.kind === 'field' && c.defect.field === 'project_id' ? c.defect.value : String(c.projectId);
  const extra: Record<(typeof HARMLESS)[number], string> = {
    'runner-null': '"runner":null',
    'runner-object': '"runner":{"id":5,"description":"gsa","runner_type":"instance_type","active":true,"is_shared":true,"tags":["docker","linux"]}',
    'runner-tags-odd': '"runner":{"id":"x","tags":[{"a":[1,{"b":null}]},null,42,"' + 'z'.repeat(300) + '"]}',
    'commit-nested': '"commit":{"id":981,"sha":"95d49d1e","message":"Fix\\n\\u0000\\u202e","author_name":"Ada","status":"pending"}',
    'commit-odd': '"commit":[[[[[[[[[[{"a":{"b":{"c":[1e308,-1e-308]}}}]]]]]]]]]]',
    'proto-key': '"__proto__":{"polluted":1,"build_id":1}',
    'constructor-key': '"constructor":{"prototype":{"polluted":1}}',
    'extra-fields': '"build_name":"test:unit","build_stage":"test","build_queued_duration":1.35,"ref":"main","tag":false,"environment":null',
    'pipeline-junk': '"pipeline_id":"not-a-number"',
    'retries-junk': '"retries_count":-3.5',
    'unicode-names': '"build_name":"\ud83d\ude80 déploiement \u00e9 ﬁ","project_name":"Ǆ / ŉ"',
    'whitespace': '"ref" :\t"main"\r\n',
    'duplicate-key-last-wins': `"project_id":1,"project_id":${projectId}`,
  };
  let text = `{ "object_kind": ${kind}, "build_id": ${jobId}, "project_id": ${projectId}, "build_status": ${status}, ${extra[c.harmless]} }`;
  if (c.defect.kind === 'not-object') text = c.defect.text;
  if (c.defect.kind === 'json') {
    if (c.defect.how === 'bom') text = '\ufeff' + text;
    if (c.defect.how === 'truncated') text = text.slice(0, Math.floor(text.length / 2));
    if (c.defect.how === 'trailing-garbage') text = text + ' x';
    if (c.defect.how === 'single-quotes') text = text.replace(/"/g, "'");
    if (c.defect.how === 'nan') text = text.replace(`"build_id": ${jobId}`, '"build_id": NaN');
  }
  return text;
}

function encode(c: Case, text: string): { body: string; base64: boolean } {
  const useBase64 = c.base64 || c.defect.kind === 'base64';
  if (!useBase64) return { body: text, base64: false };
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  if (c.defect.kind !== 'base64') return { body: b64, base64: true };
  const padded = b64.endsWith('=') ? b64 : Buffer.from(text + ' ', 'utf8').toString('base64'); // make sure there is padding to drop
  if (c.defect.how === 'unpadded') return { body: padded.replace(/=+$/, ''), base64: true };
  if (c.defect.how === 'bad-alphabet') return { body: '*' + b64.slice(1), base64: true };
  if (c.defect.how === 'whitespace') return { body: b64.slice(0, 8) + '\r\n' + b64.slice(8), base64: true };
  return { body: b64.replace(/\+/g, '-').replace(/\//g, '_') + (b64.includes('+') || b64.includes('/') ? '' : '-'), base64: true };
}

function eventOf(c: Case): Record<string, unknown> {
  const headers: Record<string, string> = { ...c.extraHeaders, host: 'abc123.execute-api.eu-west-1.amazonaws.com' };
  const token = TOKEN_FORMS[c.token]();
  if (token !== undefined) headers['x-gitlab-token'] = token;
  const eventName = EVENT_FORMS[c.event];
  if (eventName !== undefined) headers['x-gitlab-event'] = eventName;
  if (c.contentType[0] !== undefined) headers['content-type'] = c.contentType[0];
  if (c.idempotencyKey !== undefined) headers['idempotency-key'] = c.idempotencyKey;
  const { body, base64 } = encode(c, bodyText(c));
  const http = { method: 'POST', path: '/webhook', protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'GitLab/18.5.1' };
  const requestContext =
    c.requestContext === 'full'
      ? { accountId: '123456789012', apiId: 'abc123', http, requestId: 'Jq2d1gK5DoEEMXg=', routeKey: 'POST /webhook', stage: '$default', timeEpoch: 1764234903000 }
      : c.requestContext === 'no-http'
        ? { accountId: '123456789012' }
        : c.requestContext === 'odd-ip'
          ? { http: { ...http, sourceIp: '\r\n' + 'x'.repeat(300) } }
          : c.requestContext === 'string'
            ? 'requestContext'
            : undefined;
  const e: Record<string, unknown> = { version: '2.0', routeKey: 'POST /webhook', rawPath: '/webhook', rawQueryString: c.rawQueryString, headers, body };
  if (c.cookies) e.cookies = c.cookies;
  if (requestContext !== undefined) e.requestContext = requestContext;
  if (c.base64Flag === 'bool') e.isBase64Encoded = base64;
  else if (c.base64Flag === 'string') e.isBase64Encoded = String(base64);
  return e;
}

// ---- the model -------------------------------------------------------------------------------------

type Expected = { status: number; queued?: { jobId: number; projectId: number; status: string }; mentions?: RegExp };

function expected(c: Case): Expected {
  if (c.token !== 'exact') return { status: 401, mentions: /X-Gitlab-Token/ };
  if (c.event !== 'exact') return { status: 200 };
  if (!c.contentType[1]) return { status: 415, mentions: /Content-Type/ };
  // A base64 body with the flag missing or a string is read as text: base64 is not JSON.
  const base64 = c.base64 || c.defect.kind === 'base64';
  if (base64 && c.base64Flag !== 'bool') return { status: 400, mentions: /JSON/ };
  const d = c.defect;
  if (d.kind === 'base64') return d.how === 'url-safe' || d.how === 'bad-alphabet' || d.how === 'whitespace' || d.how === 'unpadded' ? { status: 400, mentions: /base64/ } : { status: 400 };
  if (d.kind === 'json') return { status: 400, mentions: /JSON/ };
  if (d.kind === 'not-object') return { status: 400, mentions: /JSON object/ };
  if (d.kind === 'field') return { status: 422, mentions: new RegExp(d.field) };
  if (IGNORED_STATUSES.includes(c.status)) return { status: 200 };
  return { status: 202, queued: { jobId: c.jobIdText[1], projectId: c.projectId, status: c.status } };
}

// ---- the run -----------------------------------------------------------------------------------------

const ctx = (i: number) => ({ awsRequestId: `11111111-0000-4000-8000-${String(i).padStart(12, '0')}`, functionName: 'webhook', getRemainingTimeInMillis: () => 10_000 }) as any;
const HTTP_FIELD_VALUE = /^[\t\x20-\x7e]*$/;

describe(`webhook model fuzz (fast-check, seed ${SEED}, ${RUNS} API Gateway events)`, () => {
  let out: string[] = [];
  let spy: jest.SpyInstance;
  beforeAll(() => {
    process.env.QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/q';
    process.env.WEBHOOK_SECRET_PARAMETER = '/gsa/model/dev/secrets/webhook-secret';
    process.env.WEBHOOK_SECRET_CACHE_SECONDS = '300';
    aws.reset();
    resetForTests({ send: aws.send, retryEnv: noWait });
    clearRegisteredSecrets();
    aws.on('GetParameter').resolves({ Parameter: { Value: SECRET } });
    aws.on('SendMessage').resolves({ MessageId: '9f1c2a3b-0000-4000-8000-000000000002' });
    spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: any) => {
      out.push(String(chunk));
      return true;
    }) as any);
  });
  afterAll(() => spy.mockRestore());

  it('answers every request as the model says, with no 5xx, nothing queued without the secret, nothing echoed or leaked', async () => {
    const counts: Record<string, number> = {};
    let i = 0;
    let queuedTotal = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        out = [];
        const before = aws.calls('SendMessage').length;
        const e = eventOf(c);
        const res = await handler(e as any, ctx(i++));
        const sends = aws.calls('SendMessage').slice(before);
        const want = expected(c);
        counts[res.statusCode] = (counts[res.statusCode] ?? 0) + 1;
        queuedTotal += sends.length;

        expect(res.statusCode).toBe(want.status);
        if (want.mentions) expect(JSON.parse(res.body).error).toMatch(want.mentions);
        if (want.queued) {
          expect(sends).toHaveLength(1);
          const m = decodeQueueMessage(sends[0].MessageBody!);
          expect(m).toMatchObject({ type: 'job', event: want.queued });
        } else expect(sends).toHaveLength(0);

        // What no request may cause, whatever it is.
        const log = out.join('');
        expect(Buffer.byteLength(res.body)).toBeLessThan(1024);
        for (const v of Object.values(res.headers)) expect(v).toMatch(HTTP_FIELD_VALUE);
        expect(log).not.toContain(SECRET);
        expect(res.body).not.toContain(SECRET);
        for (const line of log.split('\n').filter(Boolean)) expect(Buffer.byteLength(line)).toBeLessThan(4096);
        const presented = (e.headers as Record<string, string>)['x-gitlab-token'];
        if (presented && presented.length >= 12 && presented !== SECRET) expect(log).not.toContain(JSON.stringify(presented).slice(1, -1));
        for (const long of [c.rawQueryString, ...(c.cookies ?? []), ...Object.values(c.extraHeaders), c.idempotencyKey ?? ''].filter((s) => s.length > 80))
          expect(log + res.body).not.toContain(long.slice(0, 81));
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(({} as any).polluted).toBeUndefined();
    // The suite exercised the accepting path and each refusal.
    for (const s of ['202', '200', '400', '401', '415', '422']) expect(counts[s]).toBeGreaterThan(0);
    expect(queuedTotal).toBeGreaterThan(RUNS / 10);
    process.stderr.write(`webhook model fuzz: seed ${SEED}, ${RUNS} events; status ${Object.entries(counts).map(([k, v]) => `${k}:${v}`).join(' ')}; ${queuedTotal} queued, each with the job the body named; 0 mismatches with the model\n`);
  }, 120_000);
});
