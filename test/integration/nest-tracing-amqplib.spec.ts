import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { SpanKind, trace } from '@opentelemetry/api';
import type { INestMicroservice } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { AmqpClient } from '../../lib/nest';
import { amqpUrl } from '../support/broker';
import { BrokerProbe, startMicroservice } from '../support/nest-support';
import { parentOf, TestTelemetry } from '../support/telemetry';

// Warren and an amqplib client instrumented by @opentelemetry/instrumentation-amqplib (fixtures/amqplib-traced-peer.ts,
// a process of its own) write and read the same trace headers: a trace goes on from one to the other, both ways.

jest.setTimeout(60_000);

const telemetry = new TestTelemetry();

const ROOT = path.resolve(__dirname, '../..');
const PEER = path.join(__dirname, 'fixtures', 'amqplib-traced-peer.ts');

interface PeerSpan {
  name: string;
  kind: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

/** Runs the peer; `onLine` sees each JSON line it prints; resolves with the last one when it exits cleanly. */
function runPeer(
  mode: 'rpc' | 'consume',
  env: Record<string, string>,
  onLine: (line: Record<string, unknown>) => void = () => undefined,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', PEER, mode], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: amqpUrl(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    let last: Record<string, unknown> = {};
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines.filter((l) => l.startsWith('{'))) {
        last = JSON.parse(line) as Record<string, unknown>;
        onLine(last);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(last);
      else reject(new Error(`amqplib peer ${mode} exited (${code ?? signal}): ${stderr}`));
    });
  });
}

describe('tracing across Warren and an instrumented amqplib client', () => {
  let probe: BrokerProbe;
  let app: INestMicroservice;
  let exchange: string;
  let rpcQueue: string;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    exchange = probe.exchange('otel-amqplib');
    rpcQueue = probe.queue('otel-amqplib-rpc');
    const xDef = { name: exchange, type: 'topic', durable: false } as const;

    @Controller()
    class PeerController {
      @MessagePattern('peer.get', { queue: { name: rpcQueue, durable: false }, exchange: xDef })
      get(@Payload() query: { id: number }): { id: number; by: string } {
        return { id: query.id, by: 'warren' };
      }
    }

    ({ app } = await startMicroservice({ controllers: [PeerController] }));
  });

  afterAll(async () => {
    await app?.close();
    await probe?.close();
    await telemetry.shutdown();
  });

  it("an amqplib request's trace continues in the Warren handler, and Warren's reply continues it in amqplib", async () => {
    const result = await runPeer('rpc', { PEER_EXCHANGE: exchange, PEER_ROUTING_KEY: 'peer.get' });
    expect(result.reply).toEqual({ id: 3, by: 'warren' });
    const peerSpans = result.spans as PeerSpan[];
    const request = peerSpans.find((s) => s.name === `publish ${exchange}` && s.kind === 'PRODUCER');
    expect(request).toBeDefined();

    const spans = await telemetry.spans.until(
      (all) => all.some((s) => s.spanContext().traceId === request!.traceId && s.name === `process ${rpcQueue}`),
      "Warren's handler span",
    );
    const handling = spans.find((s) => s.spanContext().traceId === request!.traceId)!;
    expect(handling.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(handling)).toBe(request!.spanId);
    expect(handling.attributes['messaging.message.conversation_id']).toBe('peer-1');

    // The reply's consumer span in amqplib is a child of Warren's handler span.
    const replyProcess = peerSpans.find((s) => s.kind === 'CONSUMER');
    expect(replyProcess).toMatchObject({
      traceId: request!.traceId,
      parentSpanId: handling.spanContext().spanId,
    });
  });

  it("a Warren event's trace continues in an instrumented amqplib consumer", async () => {
    const queue = probe.queue('otel-amqplib-consumer');
    await probe.channel.assertQueue(queue, { durable: false });
    await probe.channel.bindQueue(queue, exchange, 'peer.event');
    const client = new AmqpClient({ url: amqpUrl(), exchange });
    try {
      let emitted: Promise<{ traceId: string; publishId: string }> | undefined;
      const result = await runPeer('consume', { PEER_QUEUE: queue }, (line) => {
        if (line.ready !== true) return;
        emitted = trace.getTracer('test').startActiveSpan('test', async (root) => {
          await lastValueFrom(client.emit('peer.event', { id: 4 }), { defaultValue: undefined });
          root.end();
          const all = await telemetry.spans.until(
            (s) =>
              s.some((x) => x.spanContext().traceId === root.spanContext().traceId && x.name === `publish ${exchange}`),
            "Warren's publish span",
          );
          const publish = all.find(
            (x) => x.spanContext().traceId === root.spanContext().traceId && x.name === `publish ${exchange}`,
          )!;
          return { traceId: root.spanContext().traceId, publishId: publish.spanContext().spanId };
        });
      });
      expect(result.body).toEqual({ id: 4 });
      const { traceId, publishId } = await emitted!;
      const consumer = (result.spans as PeerSpan[]).find((s) => s.kind === 'CONSUMER');
      expect(consumer).toMatchObject({ name: `${queue} process`, traceId, parentSpanId: publishId });
    } finally {
      await client.close();
    }
  });
});
