/**
 * One signed call of an AWS JSON-protocol API (SSM's awsJson1_1, SQS's awsJson1_0) over Node's own
 * http/https, for the webhook Lambda, whose whole AWS use is two such calls (SSM GetParameter, SQS
 * SendMessage; lib/aws/webhook-aws.ts).
 *
 * Why not the v3 clients there: each client brings its whole runtime (endpoint rules, schemas,
 * middleware stack, the default credential chain with its SSO/STS clients), so a bundle that only
 * sends two requests was 433 KiB and loaded in 1.7-2 x a bare Node start; with this module it is a
 * tenth of that (docs/deployment.md, "Cold start"; `npm run bench -- bundles`). What a request
 * needs is small and standard, and the parts that are easy to get wrong are not written here:
 * signing is the SDK's own Signature V4 signer (@smithy/signature-v4 with @smithy/core's SHA-256
 * on node:crypto, the same code that signs the v3 clients' requests), and errors are shaped like the
 * SDK's (`name` = the AWS error code, `$metadata.httpStatusCode`, `$fault`), so the SDK's own retry
 * classifiers in retry.ts judge them exactly as they judge a client's.
 *
 * What this supports, and what it deliberately does not (the controller Lambdas keep the v3 clients):
 * - credentials from the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the session
 *   token AWS_SESSION_TOKEN): where Lambda puts its role's credentials. No profiles, SSO, IMDS or
 *   web identity; a missing variable is an EnvError that names it (the webhook answers 500).
 * - region from AWS_REGION (Lambda sets it), else AWS_DEFAULT_REGION.
 * - endpoints: AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL (the SDK's variables: moto, dev),
 *   else AWS's regional endpoint in the region's partition (FIPS with AWS_USE_FIPS_ENDPOINT=true;
 *   GovCloud's regional endpoints are FIPS already), as the SDK's endpoint rules give it; the caller
 *   may pass the origin of an SQS queue URL instead, which wins over FIPS as it does in the SDK's SQS
 *   client (set AWS_ENDPOINT_URL_SQS to a FIPS endpoint to force one).
 * - no clock-skew correction: Lambda's clock is kept by AWS.
 */
import http from 'node:http';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256Node } from '@smithy/core/checksum';
import { EnvError, type Env } from '../lambda/env';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface Timeouts {
  /** Milliseconds to establish the TCP connection. */
  connectTimeoutMs: number;
  /** Milliseconds the whole request may take, connection included. */
  requestTimeoutMs: number;
}

/** A service this module can call: its signing name and JSON protocol version. */
export interface AwsJsonService {
  /** Signing name and endpoint prefix: "ssm", "sqs". */
  name: string;
  /** The X-Amz-Target prefix: "AmazonSSM", "AmazonSQS". */
  targetPrefix: string;
  /** "1.1" (SSM) or "1.0" (SQS). */
  jsonVersion: '1.0' | '1.1';
}

export const SSM: AwsJsonService = { name: 'ssm', targetPrefix: 'AmazonSSM', jsonVersion: '1.1' };
export const SQS: AwsJsonService = { name: 'sqs', targetPrefix: 'AmazonSQS', jsonVersion: '1.0' };

export interface AwsJsonCall {
  service: AwsJsonService;
  /** The operation: "GetParameter", "SendMessage". */
  operation: string;
  input: Record<string, unknown>;
  /** An endpoint to use when no AWS_ENDPOINT_URL* override is set (an SQS queue URL's origin). */
  defaultEndpoint?: string;
  timeouts: Timeouts;
}

/** Sends one call and resolves with the parsed JSON answer; rejects with an AwsServiceError, a TimeoutError or Node's network error. */
export type AwsJsonSend = (call: AwsJsonCall) => Promise<Record<string, unknown>>;

/**
 * An error answer from AWS, shaped like the SDK's ServiceException so that retry.ts (and so the
 * SDK's classifiers) judge it alike. It carries the code, AWS's message and the request id, never
 * the request (its signature, session token) nor a response body beyond the error's message.
 */
export class AwsServiceError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode: number; requestId?: string };
  constructor(code: string, message: string, status: number, requestId?: string) {
    super(message || code);
    this.name = code;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, ...(requestId ? { requestId } : {}) };
  }
}

/** The error code of a JSON-protocol error answer, as the SDK reads it (x-amzn-errortype, else the body's __type/code), without namespace or URI. */
function errorCodeOf(headers: http.IncomingHttpHeaders, body: Record<string, unknown>): string | undefined {
  const raw = [headers['x-amzn-errortype'], body.__type, body.code, body.Code].find((v): v is string => typeof v === 'string' && v !== '');
  if (!raw) return undefined;
  const code = raw.split(':')[0];
  return code.includes('#') ? code.split('#').pop() : code;
}

/** Longest answer read: SSM and SQS answers are a few KiB (a parameter value at most 8 KB). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

function timeoutError(what: string): Error {
  return Object.assign(new Error(what), { name: 'TimeoutError' });
}

function credentialsFromEnv(env: Env): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new EnvError(
      `environment variable ${accessKeyId ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID'} is not set: the webhook signs its SSM and SQS calls with the credentials Lambda puts in its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and reads no other source`,
    );
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

export function regionFromEnv(env: Env): string {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new EnvError('environment variable AWS_REGION is not set (Lambda sets it; elsewhere set AWS_REGION or AWS_DEFAULT_REGION)');
  if (!/^[a-z0-9-]{1,40}$/.test(region)) throw new EnvError(`environment variable AWS_REGION=${JSON.stringify(region.slice(0, 40))} is not a region name such as eu-west-1`);
  return region;
}

/**
 * The DNS suffix of a region's partition, by the region patterns of AWS's partitions data (the SDK's
 * @aws-sdk/core util-endpoints partitions; test/aws/aws-json.test.ts compares the endpoints with the
 * SDK's own resolver). A wrong suffix is no outage that passes: its DNS error (ENOTFOUND) is retried
 * and answered 503 forever, so every partition is named, the European Sovereign Cloud's included.
 */
const PARTITION_SUFFIXES: [RegExp, string][] = [
  [/^cn-\w+-\d+$/, 'amazonaws.com.cn'],
  [/^eusc-de-\w+-\d+$/, 'amazonaws.eu'],
  [/^us-iso-\w+-\d+$/, 'c2s.ic.gov'],
  [/^us-isob-\w+-\d+$/, 'sc2s.sgov.gov'],
  [/^eu-isoe-\w+-\d+$/, 'cloud.adc-e.uk'],
  [/^us-isof-\w+-\d+$/, 'csp.hci.ic.gov'],
];
function dnsSuffix(region: string): string {
  return PARTITION_SUFFIXES.find(([re]) => re.test(region))?.[1] ?? 'amazonaws.com';
}

/** The service's host in a region: `-fips` when asked for, except in GovCloud, whose regional endpoints are the FIPS ones (SSM's and SQS's endpoint rules). */
function regionalHost(service: AwsJsonService, region: string, fips: boolean): string {
  const name = fips && !/^us-gov-\w+-\d+$/.test(region) ? `${service.name}-fips` : service.name;
  return `${name}.${region}.${dnsSuffix(region)}`;
}

/**
 * Where a call goes: the SDK's endpoint variables first (AWS_ENDPOINT_URL_SSM / _SQS, then
 * AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), then the caller's default
 * (an SQS queue URL's origin), then the service's regional endpoint.
 */
export function endpointFor(service: AwsJsonService, region: string, env: Env, defaultEndpoint?: string): URL {
  const ignore = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true';
  const name = `AWS_ENDPOINT_URL_${service.name.toUpperCase()}`;
  const configured = ignore ? undefined : env[name] || env.AWS_ENDPOINT_URL;
  const raw = configured || defaultEndpoint || `https://${regionalHost(service, region, env.AWS_USE_FIPS_ENDPOINT === 'true')}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EnvError(`the ${service.name.toUpperCase()} endpoint ${JSON.stringify(raw.slice(0, 200))} (${configured ? `${env[name] ? name : 'AWS_ENDPOINT_URL'}` : 'derived'}) is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new EnvError(`the ${service.name.toUpperCase()} endpoint ${url.origin} must be http(s)`);
  return url;
}

/** One keep-alive agent per protocol: the second delivery of a warm container reuses the connection. */
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/** Signers per service, region and key: the signer caches its signing key for the day. */
const signers = new Map<string, SignatureV4>();
function signerFor(service: string, region: string, credentials: AwsCredentials): SignatureV4 {
  const key = `${service}\n${region}\n${credentials.accessKeyId}\n${credentials.sessionToken ?? ''}`;
  let signer = signers.get(key);
  if (!signer) {
    if (signers.size > 8) signers.clear();
    signer = new SignatureV4({ service, region, credentials, sha256: Sha256Node, uriEscapePath: true });
    signers.set(key, signer);
  }
  return signer;
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** POSTs a signed request and reads the answer, within the connect and request timeouts. */
function post(url: URL, headers: Record<string, string>, body: string, timeouts: Timeouts, what: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'http:' ? http : https;
    const req = lib.request({ method: 'POST', protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path: url.pathname || '/', headers, agent: agents[url.protocol as 'http:' | 'https:'] });
    let connectTimer: NodeJS.Timeout | undefined;
    const requestTimer = setTimeout(() => req.destroy(timeoutError(`${what}: no answer within ${timeouts.requestTimeoutMs} ms`)), timeouts.requestTimeoutMs);
    const done = () => {
      clearTimeout(requestTimer);
      if (connectTimer) clearTimeout(connectTimer);
    };
    req.once('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive connection
      connectTimer = setTimeout(() => req.destroy(timeoutError(`${what}: no connection within ${timeouts.connectTimeoutMs} ms`)), timeouts.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    req.once('error', (e) => {
      done();
      reject(e);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_RESPONSE_BYTES) return void chunks.push(c);
        done();
        reject(new Error(`${what}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
        req.destroy();
      });
      res.once('end', () => {
        done();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.once('error', (e) => {
        done();
        reject(e);
      });
    });
    req.end(body);
  });
}

/**
 * The AwsJsonSend that Lambda uses: credentials, region and endpoint from `env` (read at each call,
 * so a test or dev run may change them), signed with Signature V4, over http(s) with keep-alive.
 */
export function envAwsJsonSend(env: Env = process.env): AwsJsonSend {
  return async ({ service, operation, input, defaultEndpoint, timeouts }) => {
    const credentials = credentialsFromEnv(env);
    const region = regionFromEnv(env);
    const url = endpointFor(service, region, env, defaultEndpoint);
    const body = JSON.stringify(input);
    const signed = await signerFor(service.name, region, credentials).sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname || '/',
      query: {},
      headers: {
        host: url.host,
        'content-type': `application/x-amz-json-${service.jsonVersion}`,
        'x-amz-target': `${service.targetPrefix}.${operation}`,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const what = `${service.name.toUpperCase()} ${operation}`;
    const res = await post(url, { ...(signed.headers as Record<string, string>), 'user-agent': 'gitlab-spot-autoscaler-webhook' }, body, timeouts, what);
    let parsed: unknown = {};
    let parseFailed = false;
    try {
      if (res.body.trim() !== '') parsed = JSON.parse(res.body);
    } catch {
      parseFailed = true;
    }
    const obj = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    const requestId = typeof res.headers['x-amzn-requestid'] === 'string' ? res.headers['x-amzn-requestid'] : undefined;
    if (res.status >= 200 && res.status < 300) {
      // Never the body in the message: a GetParameter answer carries the secret.
      if (parseFailed || obj !== parsed) throw new AwsServiceError('InvalidResponse', `${what}: the answer (HTTP ${res.status}, ${res.body.length} characters) is not a JSON object`, 502, requestId);
      return obj;
    }
    const code = errorCodeOf(res.headers, obj) ?? (res.status >= 500 ? 'ServiceUnavailable' : 'UnknownError');
    const message = typeof obj.message === 'string' ? obj.message : typeof obj.Message === 'string' ? obj.Message : '';
    throw new AwsServiceError(code, `${what}: ${message.slice(0, 500) || `HTTP ${res.status}`}`, res.status, requestId);
  };
}
