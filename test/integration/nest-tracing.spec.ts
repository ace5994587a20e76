import { Controller, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test, type TestingModule } from '@nestjs/testing';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { firstValueFrom, from, lastValueFrom, type Observable, toArray } from 'rxjs';
import {
  AmqpClient,
  AmqpContext,
  AmqpModule,
  AmqpPublisher,
  AmqpRecordBuilder,
  AmqpServer,
  InjectPublisher,
  parkingLotName,
  retryQueueName,
} from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, Recorder } from '../support/nest-support';
import { parentOf, TestTelemetry } from '../support/telemetry';

jest.setTimeout(30_000);

// Registered before any Warren object exists, as an application's tracing setup runs first.
const telemetry = new TestTelemetry();
const tracer = trace.getTracer('test');

const exchange = uniqueName('nest-otel-x');
const rpcQueue = uniqueName('nest-otel-rpc');
const ordersQueue = uniqueName('nest-otel-orders');
const billedQueue = uniqueName('nest-otel-billed');
const brokenQueue = uniqueName('nest-otel-broken');
const refusedQueue = uniqueName('nest-otel-refused');
const parkedQueue = uniqueName('nest-otel-parked');
const retriedQueue = uniqueName('nest-otel-retried');
const noAckQueue = uniqueName('nest-otel-noack');

const billed = new Recorder<{ id: number; baggage: string | undefined }>();
const ordersExchange = { name: exchange, type: 'topic', durable: false } as const;

@Injectable()
class Billing {
  constructor(@InjectPublisher('billing') readonly publisher: AmqpPublisher) {}
}

@Controller()
class OrdersController {
  constructor(private readonly billing: Billing) {}

  @MessagePattern('orders.get', { queue: { name: rpcQueue, durable: false }, exchange: ordersExchange })
  get(@Payload() query: { id: number }): { id: number; item: string } {
    return { id: query.id, item: 'keyboard' };
  }

  @MessagePattern('orders.list', { queue: { name: rpcQueue, durable: false }, exchange: ordersExchange })
  list(@Payload() _query: unknown): Observable<number> {
    return from([1, 2, 3]);
  }

  @MessagePattern('orders.missing', { queue: { name: rpcQueue, durable: false }, exchange: ordersExchange })
  missing(@Payload() query: { id: number }): never {
    throw new RpcException({ message: `order ${query.id} not found`, code: 'NOT_FOUND' });
  }

  // An event handler that publishes in turn: its publish belongs to the same trace.
  @EventPattern('order.created', { queue: { name: ordersQueue, durable: false }, exchange: ordersExchange })
  async created(@Payload() order: { id: number }): Promise<void> {
    await this.billing.publisher.publish('order.billed', order);
  }

  @EventPattern('order.billed', { queue: { name: billedQueue, durable: false }, exchange: ordersExchange })
  onBilled(@Payload() order: { id: number }): void {
    billed.push({ id: order.id, baggage: propagation.getActiveBaggage()?.getEntry('tenant')?.value });
  }

  @EventPattern('order.broken', { queue: { name: brokenQueue, durable: false }, exchange: ordersExchange })
  broken(@Payload() _event: unknown): void {
    throw new Error('the handler broke');
  }

  @EventPattern('order.refused', {
    queue: { name: refusedQueue, durable: false },
    exchange: ordersExchange,
    ack: 'manual',
  })
  refused(@Ctx() ctx: AmqpContext): void {
    ctx.nack({ requeue: false });
  }

  @EventPattern('order.doomed', {
    queue: { name: parkedQueue, durable: false },
    exchange: ordersExchange,
    retry: { attempts: 1, delays: [1000] },
  })
  doomed(@Payload() _event: unknown): void {
    throw new Error('never works');
  }

  @EventPattern('order.flaky', {
    queue: { name: retriedQueue, durable: false },
    exchange: ordersExchange,
    retry: { attempts: 2, delays: [50] },
  })
  flaky(@Ctx() ctx: AmqpContext): void {
    if (ctx.getAttempt() === 1) throw new RpcException('first attempt fails');
  }

  @EventPattern('order.noted', { queue: { name: noAckQueue, durable: false }, exchange: ordersExchange, ack: 'none' })
  noted(@Payload() _event: unknown): void {}
}

/** Runs `fn` inside a span of the test's own: its trace id names the trace the call starts. */
async function traced<T>(fn: () => Promise<T>): Promise<{ traceId: string; rootId: string; result: T }> {
  return tracer.startActiveSpan('test', async (span) => {
    try {
      return { traceId: span.spanContext().traceId, rootId: span.spanContext().spanId, result: await fn() };
    } finally {
      span.end();
    }
  });
}

function one(spans: ReadableSpan[], name: string, kind: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  expect(found.map((s) => `${s.name} (${SpanKind[s.kind]})`)).toEqual([`${name} (${SpanKind[kind]})`]);
  return found[0];
}

const ended = (traceId: string, names: string[]) => (spans: ReadableSpan[]) =>
  names.every((n) => spans.some((s) => s.spanContext().traceId === traceId && s.name === n));

describe('tracing with the OpenTelemetry SDK present', () => {
  let moduleRef: TestingModule;
  let micro: INestMicroservice;
  let client: AmqpClient;
  let probe: BrokerProbe;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('exchange', exchange);
    for (const q of [
      rpcQueue,
      ordersQueue,
      billedQueue,
      brokenQueue,
      refusedQueue,
      parkedQueue,
      retriedQueue,
      noAckQueue,
    ])
      probe.track('queue', q);
    probe.track('queue', parkingLotName(parkedQueue));
    probe.track('queue', retryQueueName(parkedQueue, 1000));
    probe.track('queue', parkingLotName(retriedQueue));
    probe.track('queue', retryQueueName(retriedQueue, 50));
    moduleRef = await Test.createTestingModule({
      imports: [
        AmqpModule.forRoot({
          url: amqpUrl(),
          publishers: [{ name: 'billing', exchange: ordersExchange }],
          client: { exchange, timeout: 5000, persistent: false },
        }),
      ],
      controllers: [OrdersController],
      providers: [Billing],
    }).compile();
    await moduleRef.init();
    micro = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
    await micro.listen();
    client = moduleRef.get(AmqpClient);
  });

  afterAll(async () => {
    await micro?.close().catch(() => undefined);
    await moduleRef?.close();
    await probe?.cleanup();
    await probe?.close();
    await telemetry.shutdown();
  });

  it('an RPC is one trace: send (CLIENT) → publish (PRODUCER) → process (CONSUMER), and the reply links back', async () => {
    const { traceId, rootId, result } = await traced(() => firstValueFrom(client.send('orders.get', { id: 7 })));
    expect(result).toEqual({ id: 7, item: 'keyboard' });
    const spans = await telemetry.spans.until(
      ended(traceId, ['send orders.get', `publish ${exchange}`, `process ${rpcQueue}`]),
      'the RPC spans',
    );
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const call = one(inTrace, 'send orders.get', SpanKind.CLIENT);
    const request = one(inTrace, `publish ${exchange}`, SpanKind.PRODUCER);
    const handling = one(inTrace, `process ${rpcQueue}`, SpanKind.CONSUMER);

    expect(parentOf(call)).toBe(rootId);
    expect(parentOf(request)).toBe(call.spanContext().spanId);
    expect(parentOf(handling)).toBe(request.spanContext().spanId);
    const correlationId = request.attributes['messaging.message.conversation_id'];
    expect(typeof correlationId).toBe('string');
    expect(request.attributes).toEqual({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': exchange,
      'messaging.rabbitmq.destination.routing_key': 'orders.get',
      'messaging.message.conversation_id': correlationId,
      'messaging.message.body.size': Buffer.byteLength(JSON.stringify({ id: 7 })),
    });
    expect(handling.attributes).toEqual({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': exchange,
      'messaging.destination.subscription.name': rpcQueue,
      'messaging.rabbitmq.destination.routing_key': 'orders.get',
      'messaging.message.conversation_id': correlationId,
      'messaging.message.body.size': Buffer.byteLength(JSON.stringify({ id: 7 })),
      'messaging.rabbitmq.message.delivery_tag': expect.any(Number),
    });
    expect(call.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.destination.name': exchange,
      'messaging.message.conversation_id': correlationId,
    });
    // The reply carried the handler's context back.
    expect(call.links.map((l) => l.context.spanId)).toEqual([handling.spanContext().spanId]);
    for (const s of [call, request, handling]) expect(s.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a streamed reply: the send span ends after the last part and links to the handler once', async () => {
    const { traceId, result } = await traced(() =>
      lastValueFrom(client.send<number>('orders.list', {}).pipe(toArray())),
    );
    expect(result).toEqual([1, 2, 3]);
    const spans = await telemetry.spans.until(ended(traceId, ['send orders.list', `process ${rpcQueue}`]), 'the spans');
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const handling = one(inTrace, `process ${rpcQueue}`, SpanKind.CONSUMER);
    const call = one(inTrace, 'send orders.list', SpanKind.CLIENT);
    expect(call.links.map((l) => l.context.spanId)).toEqual([handling.spanContext().spanId]);
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("an event is one trace: emit → process, the handler's own publish → process, and baggage travels with it", async () => {
    const withBaggage = propagation.setBaggage(
      context.active(),
      propagation.createBaggage({ tenant: { value: 'acme' } }),
    );
    const { traceId, rootId } = await context.with(withBaggage, () =>
      traced(() => lastValueFrom(client.emit('order.created', { id: 1 }), { defaultValue: undefined })),
    );
    await expect(billed.waitFor(1)).resolves.toEqual([{ id: 1, baggage: 'acme' }]);
    const spans = await telemetry.spans.until(
      (all) =>
        ended(traceId, [`process ${ordersQueue}`, `process ${billedQueue}`])(all) &&
        all.filter((s) => s.spanContext().traceId === traceId && s.name === `publish ${exchange}`).length === 2,
      'the event spans',
    );
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const [emitted, billedPublish] = inTrace
      .filter((s) => s.name === `publish ${exchange}` && s.kind === SpanKind.PRODUCER)
      .sort((a, b) => (parentOf(a) === rootId ? -1 : parentOf(b) === rootId ? 1 : 0));
    const created = one(inTrace, `process ${ordersQueue}`, SpanKind.CONSUMER);
    const billedHandling = one(inTrace, `process ${billedQueue}`, SpanKind.CONSUMER);

    expect(parentOf(emitted)).toBe(rootId);
    expect(parentOf(created)).toBe(emitted.spanContext().spanId);
    expect(parentOf(billedPublish)).toBe(created.spanContext().spanId);
    expect(parentOf(billedHandling)).toBe(billedPublish.spanContext().spanId);

    const messageId = emitted.attributes['messaging.message.id'];
    expect(typeof messageId).toBe('string');
    expect(emitted.attributes).toMatchObject({
      'messaging.destination.name': exchange,
      'messaging.rabbitmq.destination.routing_key': 'order.created',
      'messaging.message.body.size': Buffer.byteLength(JSON.stringify({ id: 1 })),
    });
    expect(created.attributes).toMatchObject({
      'messaging.message.id': messageId,
      'messaging.rabbitmq.destination.routing_key': 'order.created',
      'messaging.rabbitmq.message.delivery_tag': expect.any(Number),
    });
    expect(billedPublish.attributes['messaging.rabbitmq.destination.routing_key']).toBe('order.billed');
  });

  it("a failing handler's span has an error status, and so has the caller's for a failed RPC", async () => {
    const { traceId: eventTrace } = await traced(() =>
      lastValueFrom(client.emit('order.broken', {}), { defaultValue: undefined }),
    );
    const [broken] = (await telemetry.spans.until(ended(eventTrace, [`process ${brokenQueue}`]), 'the failed event'))
      .filter((s) => s.spanContext().traceId === eventTrace)
      .filter((s) => s.name === `process ${brokenQueue}`);
    // Nest's exception filter turns an unexpected error into { status: 'error', message: 'Internal server error' }
    // before Warren sees it: that is the status message.
    expect(broken.status.code).toBe(SpanStatusCode.ERROR);
    expect(broken.attributes['error.type']).toBeDefined();

    const { traceId: rpcTrace } = await traced(() =>
      firstValueFrom(client.send('orders.missing', { id: 9 })).catch((err: unknown) => err),
    );
    const spans = await telemetry.spans.until(
      ended(rpcTrace, ['send orders.missing', `process ${rpcQueue}`]),
      'the failed RPC',
    );
    const inTrace = spans.filter((s) => s.spanContext().traceId === rpcTrace);
    const handling = one(inTrace, `process ${rpcQueue}`, SpanKind.CONSUMER);
    const call = one(inTrace, 'send orders.missing', SpanKind.CLIENT);
    expect(handling.status).toEqual({ code: SpanStatusCode.ERROR, message: 'order 9 not found' });
    expect(call.status).toEqual({ code: SpanStatusCode.ERROR, message: 'order 9 not found' });
    expect(handling.attributes['error.type']).toBe('NOT_FOUND');
    expect(call.attributes['error.type']).toBe('AmqpRpcError');
  });

  it("a retried event's attempts are process spans of its one trace, each a child of the publish", async () => {
    const { traceId } = await traced(() => lastValueFrom(client.emit('order.flaky', {}), { defaultValue: undefined }));
    const spans = await telemetry.spans.until(
      (all) =>
        all.filter((s) => s.spanContext().traceId === traceId && s.name === `process ${retriedQueue}`).length === 2,
      'both attempts',
    );
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const publish = one(inTrace, `publish ${exchange}`, SpanKind.PRODUCER);
    const attempts = inTrace.filter((s) => s.name === `process ${retriedQueue}`);
    expect(attempts.map((s) => [parentOf(s), s.status.code])).toEqual([
      [publish.spanContext().spanId, SpanStatusCode.ERROR],
      [publish.spanContext().spanId, SpanStatusCode.UNSET],
    ]);
    // The retry comes back from its retry queue through the default exchange.
    expect(attempts[1].attributes['messaging.destination.name']).toBe('');
  });

  it("without acks (ack: 'none') the span ends with the handler", async () => {
    const { traceId } = await traced(() => lastValueFrom(client.emit('order.noted', {}), { defaultValue: undefined }));
    const spans = await telemetry.spans.until(ended(traceId, [`process ${noAckQueue}`]), 'the no-ack span');
    const handling = one(
      spans.filter((s) => s.spanContext().traceId === traceId),
      `process ${noAckQueue}`,
      SpanKind.CONSUMER,
    );
    expect(handling.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a request nobody can route fails its send span (UnroutableError); its publish span ended when it was written', async () => {
    const { traceId } = await traced(() =>
      firstValueFrom(client.send('nobody.listens', {})).catch((err: unknown) => err),
    );
    const spans = await telemetry.spans.until(ended(traceId, ['send nobody.listens']), 'the failed call');
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const call = one(inTrace, 'send nobody.listens', SpanKind.CLIENT);
    expect(call.status.code).toBe(SpanStatusCode.ERROR);
    expect(call.attributes['error.type']).toBe('UnroutableError');
    expect(one(inTrace, `publish ${exchange}`, SpanKind.PRODUCER).status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a nack by the handler ends its span with an error status', async () => {
    const { traceId } = await traced(() =>
      lastValueFrom(client.emit('order.refused', {}), { defaultValue: undefined }),
    );
    const spans = await telemetry.spans.until(ended(traceId, [`process ${refusedQueue}`]), 'the nacked message');
    const handling = one(
      spans.filter((s) => s.spanContext().traceId === traceId),
      `process ${refusedQueue}`,
      SpanKind.CONSUMER,
    );
    expect(handling.status).toEqual({ code: SpanStatusCode.ERROR, message: 'nacked without requeue' });
  });

  it('a message that already carries a trace context keeps it: Warren starts no second producer span', async () => {
    const upstream = tracer.startSpan('upstream publish', { kind: SpanKind.PRODUCER });
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), upstream), headers);
    upstream.end();
    const { traceId } = upstream.spanContext();
    const record = new AmqpRecordBuilder({ id: 2 }).setOptions({ headers }).build();
    await lastValueFrom(client.emit('order.billed', record), { defaultValue: undefined });
    await billed.waitFor(2);
    const spans = await telemetry.spans.until(ended(traceId, [`process ${billedQueue}`]), 'the consumer span');
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    expect(inTrace.map((s) => s.name).sort()).toEqual([`process ${billedQueue}`, 'upstream publish']);
    expect(parentOf(one(inTrace, `process ${billedQueue}`, SpanKind.CONSUMER))).toBe(upstream.spanContext().spanId);
  });

  it('metrics: sent, consumed, operation and process durations per destination, and parked messages', async () => {
    const attrs = { 'messaging.system': 'rabbitmq', 'messaging.destination.name': exchange };
    const sentBefore = await telemetry.value('messaging.client.sent.messages', attrs);
    const { traceId } = await traced(() => lastValueFrom(client.emit('order.doomed', {}), { defaultValue: undefined }));
    await telemetry.spans.until(ended(traceId, [`process ${parkedQueue}`]), 'the parked message');

    expect(await telemetry.value('messaging.client.sent.messages', attrs)).toBe(sentBefore + 1);
    expect(await telemetry.value('messaging.client.operation.duration', attrs)).toBeGreaterThan(sentBefore);
    const consumed = { ...attrs, 'messaging.destination.subscription.name': parkedQueue };
    expect(await telemetry.value('messaging.client.consumed.messages', consumed)).toBe(1);
    const processed = (await telemetry.collect())
      .get('messaging.process.duration')
      ?.dataPoints.filter((p) => p.attributes['messaging.destination.subscription.name'] === parkedQueue);
    expect(
      processed?.map((p) => [(p.value as { count: number }).count, p.attributes['error.type'] !== undefined]),
    ).toEqual([[1, true]]);
    expect(
      await telemetry.value('warren.messages.parked', { 'messaging.destination.subscription.name': parkedQueue }),
    ).toBe(1);
    const metrics = await telemetry.collect();
    expect(metrics.get('messaging.client.operation.duration')?.descriptor.unit).toBe('s');
    expect(metrics.get('messaging.process.duration')?.descriptor.unit).toBe('s');
  });
});
