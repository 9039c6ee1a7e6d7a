/**
 * Probe for test/aws/retry.test.ts, run in plain Node (`node --import tsx`): an SSM client as the
 * project builds it (SDK retries off, short timeouts) against a local socket server that resets,
 * hangs or is closed, wrapped in withRetry. Prints one JSON line of outcomes.
 */
import { createServer, type Socket } from 'node:net';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { isRetryable, withRetry, type RetryEnv } from '../../lib/aws/retry';
import { clientSettings } from '../../lib/aws/ssm-client';

type Behaviour = (socket: Socket, n: number) => void;
let behaviour: Behaviour = () => undefined;
let connections = 0;
const sockets = new Set<Socket>();
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => undefined);
  const n = ++connections;
  socket.once('data', () => behaviour(socket, n));
});

const answer = (socket: Socket) => {
  const body = JSON.stringify({ Parameter: { Name: '/p', Type: 'String', Value: 'v', Version: 1 } });
  socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
};
const quick: RetryEnv = { sleep: async () => undefined, random: () => 0 };
const client = (port: number) =>
  // The project's own settings (SDK retry off, timeouts that throw), with short timeouts.
  new SSMClient({ ...clientSettings({ endpoint: `http://127.0.0.1:${port}`, region: 'eu-west-1', connectTimeoutMs: 300, requestTimeoutMs: 300 }), credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });

async function scenario(port: number, b: Behaviour) {
  behaviour = b;
  connections = 0;
  let attempts = 0;
  try {
    await withRetry(
      () => {
        attempts++;
        return client(port).send(new GetParameterCommand({ Name: '/p' }));
      },
      { env: quick },
    );
    return { ok: true, attempts };
  } catch (e) {
    const err = e as { code?: string; name?: string };
    return { ok: false, attempts, code: err.code, name: err.name, retryable: isRetryable(e) };
  }
}

async function main() {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const results: Record<string, unknown> = {};
  behaviour = (socket) => socket.resetAndDestroy();
  const first = await client(port)
    .send(new GetParameterCommand({ Name: '/p' }))
    .then(() => ({ ok: true }))
    .catch((e: { code?: string; name?: string }) => ({ ok: false, code: e.code, name: e.name, retryable: isRetryable(e) }));
  results.resetFirst = first;
  results.reset = await scenario(port, (socket, n) => (n === 1 ? socket.resetAndDestroy() : answer(socket)));
  results.hang = await scenario(port, (socket, n) => (n <= 2 ? undefined : answer(socket)));
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
  results.refused = await scenario(port, () => undefined); // nothing listens there any more
  process.stdout.write(JSON.stringify(results) + '\n');
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
