/**
 * Moto stamps every SQS message with the same SenderId ("AIDAIT2UOQQY3AUEKVGXU"), whoever sent it;
 * AWS stamps the identity that signed the SendMessage request — for an EC2 instance profile,
 * `<role id>:<instance id>`. The controller refuses reports whose SenderId is not the instance
 * they speak for (lib/controller/reports.ts), and ships no switch to turn that off. So the tests
 * put this proxy between the SDK clients and moto: it forwards every request unchanged, records
 * which access key signed each SendMessage / SendMessageBatch (the Authorization header), and in
 * ReceiveMessage answers replaces moto's SenderId with the identity registered for that key — what
 * AWS does. Messages signed by an unregistered key keep moto's SenderId, as an IAM user's would
 * look. The production code under test reads SenderId from the SQS answer as it does in AWS.
 *
 * SDK v3's SQS client speaks the AWS JSON protocol (X-Amz-Target: AmazonSQS.<Operation>).
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SenderIdProxy {
  endpoint: string;
  /** EC2 actions that went through the proxy (query protocol), in order, with their instance ids. */
  ec2: { action: string; instanceIds: string[]; at: number }[];
  /** The identity SQS reports for messages signed with this access key (e.g. `AROA...:i-0abc...`). */
  identify(accessKeyId: string, senderId: string): void;
  stop(): Promise<void>;
}

const accessKeyOf = (h: IncomingHttpHeaders) => /Credential=([^/]+)\//.exec(String(h.authorization ?? ''))?.[1];

export async function startSenderIdProxy(motoEndpoint: string): Promise<SenderIdProxy> {
  const target = new URL(motoEndpoint);
  const identities = new Map<string, string>();
  const senders = new Map<string, string>();
  const ec2: SenderIdProxy['ec2'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const op = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSQS\./, '');
      const sender = identities.get(accessKeyOf(req.headers) ?? '');
      if (!op && String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        const form = new URLSearchParams(body.toString());
        const action = form.get('Action');
        if (action) ec2.push({ action, instanceIds: [...form].filter(([k]) => /^InstanceId\.\d+$/.test(k)).map(([, v]) => v), at: Date.now() });
      }
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        const out: Buffer[] = [];
        upRes.on('data', (c: Buffer) => out.push(c));
        upRes.on('end', () => {
          let payload = Buffer.concat(out);
          try {
            if (op === 'SendMessage' && sender) senders.set(JSON.parse(payload.toString()).MessageId, sender);
            if (op === 'SendMessageBatch' && sender) for (const e of JSON.parse(payload.toString()).Successful ?? []) senders.set(e.MessageId, sender);
            if (op === 'ReceiveMessage') {
              const doc = JSON.parse(payload.toString());
              for (const m of doc.Messages ?? []) {
                const who = senders.get(m.MessageId);
                if (who && m.Attributes?.SenderId) m.Attributes.SenderId = who;
              }
              payload = Buffer.from(JSON.stringify(doc));
            }
          } catch {
            // not JSON (another service, an error page): forwarded as is
          }
          const headers: Record<string, string | string[] | undefined> = { ...upRes.headers, 'content-length': String(payload.length) };
          delete headers['x-amz-crc32'];
          res.writeHead(upRes.statusCode ?? 500, headers);
          res.end(payload);
        });
      });
      up.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ec2,
    identify: (key, id) => void identities.set(key, id),
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
