/**
 * Generated webhook requests for the fuzz suite (test/webhook/fuzz.test.ts): a seeded stream of
 * what a public URL receives, from GitLab's own deliveries to garbage. Each case says whether it
 * carries the real secret (only those may ever be queued) and which caller strings it contains
 * that are long enough that seeing them whole in a log line or a response would be an echo.
 *
 * Deterministic for a seed (xorshift32), so a failure is reproduced with FUZZ_SEED=<seed>.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FuzzCase {
  category: string;
  event: unknown;
  /** The request presents the exact secret in one unambiguous X-Gitlab-Token string header. */
  authentic: boolean;
  /** Caller strings of more than ECHO_MIN characters: none may appear whole in logs or responses. */
  echoes: string[];
}

/** Caller strings longer than this must never be echoed whole (the log shows at most 64 characters of one). */
export const ECHO_MIN = 80;

export function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}

const base = JSON.parse(readFileSync(join(__dirname, '../../events/webhook-job-pending.json'), 'utf8')) as { headers: Record<string, string>; body: string };
const goodBody = JSON.parse(base.body) as Record<string, unknown>;

export function generateCases(secret: string, seed: number, count: number): FuzzCase[] {
  const r = rng(seed);
  const cases: FuzzCase[] = [];
  const strings = (xs: unknown[]) => xs.filter((x): x is string => typeof x === 'string' && x.length > ECHO_MIN);
  const add = (category: string, event: unknown, authentic: boolean, echoes: unknown[] = []) => cases.push({ category, event, authentic, echoes: strings(echoes) });

  const unicode = (n: number) =>
    Array.from({ length: n }, () =>
      String.fromCodePoint(r.pick([r.int(0x20), 0x20 + r.int(0x5f), 0x7f + r.int(0x21), 0xa0 + r.int(0x700), 0x1f600 + r.int(0x50), 0xd800 + r.int(0x800) /* lone surrogate */, 0xfeff, 0x202e])),
    ).join('');
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => r.int(256)));
  const headers = (token: unknown, extra: Record<string, unknown> = {}) => {
    const h: Record<string, unknown> = { ...base.headers, 'x-gitlab-token': token, ...extra };
    if (token === undefined) delete h['x-gitlab-token'];
    return h;
  };
  const ev = (h: unknown, body: unknown, extra: Record<string, unknown> = {}) => ({ ...base, headers: h, body, isBase64Encoded: false, ...extra });
  const bodyWith = (over: Record<string, unknown>) => JSON.stringify({ ...goodBody, ...over });
  const nested = (depth: number, open: string, close: string, leaf = '') => open.repeat(depth) + leaf + close.repeat(depth);
  const wrongToken = () =>
    r.pick([
      '',
      ' ',
      secret.slice(0, -1),
      secret + ' ',
      ' ' + secret,
      secret + '\n',
      secret + '\0',
      secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase(),
      `${secret},${secret}`,
      `bad,${secret}`,
      'Bearer ' + secret,
      secret.replace(/[0-9a-f]/, (c) => (c === '0' ? '1' : '0')),
      secret.slice(0, 5) + '\ud800' + secret.slice(6),
      secret + '\u200b',
      unicode(secret.length),
      bytes(r.int(64)).toString('latin1'),
      'x'.repeat(r.pick([100, 5000, 70_000])),
    ]);

  // 1. GitLab's own deliveries, every status, with and without the secret.
  for (const status of ['created', 'pending', 'running', 'success', 'failed', 'canceled', 'manual', 'scheduled', 'skipped', 'waiting_for_resource'])
    for (let i = 0; i < 20; i++) add('gitlab-delivery', ev(headers(i % 4 ? secret : wrongToken()), bodyWith({ build_status: status, build_id: 1 + r.int(1e9) })), i % 4 !== 0);

  // 2. Tokens: wrong, near-miss, duplicated, case variants of the header name, odd types.
  for (let i = 0; i < 600; i++) add('token-wrong', ev(headers(wrongToken()), base.body), false, [base.body]);
  for (let i = 0; i < 200; i++) {
    const name = 'x-gitlab-token'.replace(/[a-z]/g, (c) => (r.int(2) ? c.toUpperCase() : c));
    const h: Record<string, unknown> = { ...base.headers };
    delete h['x-gitlab-token'];
    const good = r.int(2) === 0;
    h[name] = good ? secret : wrongToken();
    add('token-header-case', ev(h, base.body), good);
  }
  for (let i = 0; i < 100; i++) {
    // Two spellings, one right, one wrong: ambiguous, so never accepted (HTTP API itself joins repeats).
    const h: Record<string, unknown> = { ...base.headers, 'X-Gitlab-Token': r.int(2) ? secret : 'wrong', 'x-gitlab-token': r.int(2) ? secret : 'wrong' };
    add('token-two-spellings', ev(h, base.body), false);
  }
  const odd: unknown[] = [null, 0, 12345, true, [secret], { v: secret }, Buffer.from(secret), [], {}];
  for (const v of odd) for (let i = 0; i < 5; i++) add('token-odd-type', ev(headers(v), base.body), false);
  for (const name of ['x-gitlab-event', 'content-type', 'idempotency-key', 'x-gitlab-event-uuid'])
    for (const v of odd) add(`header-odd-type-${name}`, ev(headers(secret, { [name]: v }), base.body), true);

  // 3. Header values: huge, control characters, CRLF injection, Unicode, lone surrogates; in the
  //    headers whose values go into the correlation id, the dedup key and the log lines.
  const nasty = () =>
    r.pick([
      '\r\nSet-Cookie: a=b',
      'x'.repeat(r.pick([100, 5000, 100_000])),
      unicode(40 + r.int(200)),
      '\u0000\u0001\u001b[31m',
      '<script>alert(1)</script>'.repeat(5),
      '../../etc/passwd'.repeat(8),
      '0b5a3c2e-9f0d-4a8e-9a51-1f2c3d4e5f60',
      '%00%0d%0a' + 'A'.repeat(90),
    ]);
  for (let i = 0; i < 400; i++) {
    const authentic = r.int(2) === 0;
    const v = nasty();
    const name = r.pick(['x-gitlab-event-uuid', 'idempotency-key', 'x-gitlab-event', 'content-type', 'user-agent', 'x-gitlab-instance']);
    add('header-value', ev(headers(authentic ? secret : wrongToken(), { [name]: v }), base.body), authentic, [v]);
  }
  for (let i = 0; i < 20; i++) {
    // Thousands of headers, and header names that are themselves garbage.
    const h: Record<string, unknown> = headers(secret);
    for (let k = 0; k < 2000; k++) h[`x-${k}-${unicode(3)}`] = 'v'.repeat(r.int(200));
    h[unicode(100)] = 'z';
    add('header-many', ev(h, base.body), true);
  }

  // 4. Bodies: random bytes (as text and base64), huge, deep, broken, wrong types, valid but absurd.
  for (let i = 0; i < 500; i++) {
    const b = bytes(r.int(4096));
    const authentic = r.int(2) === 0;
    const mode = r.int(3);
    const text = mode === 0 ? b.toString('latin1') : mode === 1 ? b.toString('utf8') : b.toString('base64');
    add('body-random-bytes', ev(headers(authentic ? secret : wrongToken()), text, { isBase64Encoded: mode === 2 }), authentic);
  }
  for (const size of [255 * 1024, 256 * 1024, 256 * 1024 + 1, 1 << 20, 6 << 20]) {
    const pad = 'a'.repeat(size);
    add('body-huge', ev(headers(secret), bodyWith({ pad })), true, [pad]);
    add('body-huge-base64', ev(headers(secret), Buffer.from(bodyWith({ pad })).toString('base64'), { isBase64Encoded: true }), true);
    add('body-huge-unauthenticated', ev(headers(wrongToken()), bodyWith({ pad })), false, [pad]);
  }
  for (const depth of [100, 5000, 50_000, 120_000]) {
    for (const text of [
      nested(depth, '[', ']'),
      nested(depth, '{"a":', '}', '1'),
      '['.repeat(depth),
      `{"object_kind":${nested(depth, '[', ']')}}`,
      `{"object_kind":"build","build_id":1,"project_id":1,"build_status":${nested(depth, '{"s":', '}', '"x"')}}`,
    ])
      add('body-deep', ev(headers(secret), text), true);
  }
  for (const n of [100, 10_000, 200_000]) {
    const long = 'k'.repeat(n);
    for (const field of ['object_kind', 'build_status', 'build_id', 'project_id'])
      add('body-long-field', ev(headers(secret), bodyWith({ [field]: long, object_kind: field === 'object_kind' ? long : 'build' })), true, [long]);
    add('body-long-field', ev(headers(secret), JSON.stringify({ object_kind: 'build', build_id: 1, project_id: 1, build_status: unicode(n / 10) })), true);
  }
  const badValues: unknown[] = ['42', -1, 0, 1.5, 1e308, Number.MAX_SAFE_INTEGER + 2, null, true, [], {}, '', 'NaN', -0, 2 ** 53, '1e3', [1], { a: 1 }];
  for (const field of ['build_id', 'project_id', 'pipeline_id', 'retries_count', 'build_status', 'object_kind'])
    for (const v of badValues) add('body-wrong-type', ev(headers(secret), bodyWith({ [field]: v })), true);
  for (const v of [null, undefined, 42, { object_kind: 'build' }, ['a'], true, ''])
    for (let i = 0; i < 3; i++) add('body-not-string', ev(headers(secret), v), true);
  for (let i = 0; i < 300; i++) {
    // base64: valid, truncated, characters outside the alphabet, URL-safe alphabet, whitespace.
    const b64 = Buffer.from(bodyWith({ build_id: 1 + r.int(1e6) })).toString('base64');
    const variant = r.pick([b64, b64.slice(0, -3), b64.slice(0, -1) + '!', '@@' + b64, b64.replace(/\+/g, '-').replace(/\//g, '_'), b64.slice(0, 40) + '\n' + b64.slice(40), '====', '']);
    const authentic = r.int(5) !== 0;
    add('body-base64', ev(headers(authentic ? secret : wrongToken()), variant, { isBase64Encoded: true }), authentic);
  }
  for (const flag of ['true', 1, 'false', null, {}]) add('base64-flag-odd', ev(headers(secret), Buffer.from(base.body).toString('base64'), { isBase64Encoded: flag }), true);
  for (const ct of ['text/plain', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json-patch+json', 'application/jsonx', '', 'multipart/form-data; boundary=x', 'application/json\r\nX-Injected: 1'])
    for (let i = 0; i < 5; i++) add('content-type', ev(headers(secret, { 'content-type': ct }), base.body), true);
  for (const e of ['Push Hook', 'Pipeline Hook', 'job hook', 'Job Hook ', 'JOB HOOK', '', 'Job\u00a0Hook'])
    for (let i = 0; i < 5; i++) add('event-type', ev(headers(i % 2 ? secret : wrongToken(), { 'x-gitlab-event': e }), base.body), i % 2 === 1);
  for (const b of [
    '{"__proto__":{"object_kind":"build","build_id":1,"project_id":1,"build_status":"pending","polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}},"object_kind":"build","build_id":2,"project_id":2,"build_status":"pending"}',
    '{"object_kind":"build","build_id":4,"project_id":4,"build_status":"__proto__"}',
    '{"object_kind":"build","build_id":4,"project_id":4,"build_status":"toString"}',
  ])
    for (let i = 0; i < 5; i++) add('prototype-keys', ev(headers(secret), b), true);
  for (let i = 0; i < 5; i++) add('prototype-headers', ev(JSON.parse(`{"__proto__":{"x-gitlab-token":${JSON.stringify(secret)},"x-gitlab-event":"Job Hook"}}`), base.body), false);
  for (let i = 0; i < 5; i++) add('prototype-headers', ev(Object.create({ 'x-gitlab-token': secret, 'x-gitlab-event': 'Job Hook' }), base.body), false);

  // 5. Events that are not HTTP API events at all (a direct invoke may send anything).
  for (const e of [null, undefined, {}, 'hello', 42, [], [base], { headers: 'str' }, { headers: [secret] }, { ...base, requestContext: 'x' }, { ...base, requestContext: { http: { sourceIp: unicode(100) } } }])
    add('event-shape', e, false);
  add('event-shape', { Records: [{ messageId: '\r\nX: 1' }] }, false);
  add('event-shape', { id: 'x'.repeat(500), 'detail-type': 'EC2 Spot Instance Interruption Warning' }, false, ['x'.repeat(500)]);

  // 6. Random mixes of all of the above until `count`.
  while (cases.length < count) {
    const authentic = r.int(3) === 0;
    const h: Record<string, unknown> = headers(authentic ? secret : wrongToken());
    const echoes: unknown[] = [];
    if (r.int(4) === 0) h['x-gitlab-event'] = r.pick(['Job Hook', 'Push Hook', unicode(10)]);
    if (r.int(4) === 0) echoes.push((h['idempotency-key'] = nasty()));
    if (r.int(6) === 0) echoes.push((h['x-gitlab-event-uuid'] = nasty()));
    if (r.int(6) === 0) h['content-type'] = r.pick(['application/json', 'text/html', unicode(5)]);
    const o: Record<string, unknown> = { ...goodBody };
    for (const f of ['build_id', 'project_id', 'build_status', 'pipeline_id', 'object_kind', 'retries_count']) if (r.int(3) === 0) o[f] = r.pick([...badValues, 'pending', 'running', 'build', 1 + r.int(1e9)]);
    let body = JSON.stringify(o);
    if (r.int(5) === 0) body = body.slice(0, r.int(body.length));
    const b64 = r.int(5) === 0;
    add('random-mix', ev(h, b64 ? Buffer.from(body).toString('base64') : body, { isBase64Encoded: b64 }), authentic, echoes);
  }
  return cases;
}
