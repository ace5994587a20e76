import { setTimeout as delay } from 'node:timers/promises';
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ClientsModule, Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test, type TestingModule } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, of } from 'rxjs';
import { TimeoutError, UnroutableError } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpController,
  AmqpRecordBuilder,
  AmqpRpcError,
  WarrenHeaders,
  type AmqpClientOptions,
  type AmqpContext,
} from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, deferred, rejection, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-rpc-x');
const queue = uniqueName('nest-rpc-q');
const slowDone: Array<() => void> = [];

@AmqpController({
  queue: { name: queue, durable: false, autoDelete: true },
  exchange: { name: exchange, type: 'topic', durable: false },
})
class OrdersController {
  @MessagePattern('order.get')
  get(@Payload() data: { id: number }, @Ctx() ctx: AmqpContext) {
    return { id: data.id, status: 'shipped', routingKey: ctx.getRoutingKey(), pattern: ctx.getPattern() };
  }

  @MessagePattern({ cmd: 'sum', v: 1 })
  sum(@Payload() xs: number[]) {
    return xs.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('order.echo')
  async echo(@Payload() n: number) {
    await delay(n % 7);
    return n;
  }

  @MessagePattern('order.missing')
  missing() {
    throw new RpcException({ status: 'error', message: 'order not found', code: 'NOT_FOUND' });
  }

  @MessagePattern('order.crash')
  crash() {
    throw new Error('database exploded');
  }

  @MessagePattern('order.slow')
  async slow(@Payload() ms: number) {
    await delay(ms);
    slowDone.shift()?.();
    return 'late';
  }

  @MessagePattern('order.stream')
  stream() {
    return of(1, 2, 3);
  }
}

@Module({ controllers: [OrdersController] })
class OrdersModule {}

describe('Nest RPC over AMQP', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let callers: TestingModule;
  let client: AmqpClient;

  const newClient = (options: AmqpClientOptions = {}) => {
    const c = new AmqpClient({ url: amqpUrl(), exchange, timeout: 5000, ...options });
    apps.push(c);
    return c;
  };

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    const { app } = await startMicroservice({ imports: [OrdersModule] });
    apps.push(app);
    callers = await Test.createTestingModule({
      imports: [
        ClientsModule.register([
          { name: 'ORDERS', customClass: AmqpClient, options: { url: amqpUrl(), exchange, timeout: 5000 } },
        ]),
        ClientsModule.registerAsync([
          {
            name: 'ORDERS_ASYNC',
            imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ AMQP_URL: amqpUrl() })] })],
            inject: [ConfigService],
            useFactory: (config: ConfigService) => ({
              customClass: AmqpClient,
              options: { url: config.get<string>('AMQP_URL'), exchange, replyTo: 'queue' },
            }),
          },
        ]),
      ],
    }).compile();
    client = callers.get<AmqpClient>('ORDERS');
  });

  afterAll(async () => {
    await callers?.close();
    await closeAll(apps);
    await probe?.close();
  });

  it('round trip: send() emits the handler result, the pattern being the routing key', async () => {
    const reply = await firstValueFrom(client.send('order.get', { id: 7 }));
    expect(reply).toEqual({ id: 7, status: 'shipped', routingKey: 'order.get', pattern: 'order.get' });
  });

  it('ClientsModule.registerAsync builds the client from ConfigService', async () => {
    const asyncClient = callers.get<AmqpClient>('ORDERS_ASYNC');
    await expect(firstValueFrom(asyncClient.send('order.get', { id: 8 }))).resolves.toMatchObject({ id: 8 });
  });

  it('an object pattern becomes a stable routing key (sorted keys)', async () => {
    await expect(firstValueFrom(client.send({ v: 1, cmd: 'sum' }, [1, 2, 3]))).resolves.toBe(6);
  });

  it('an Observable result is streamed: lastValueFrom(send()) gets its last value', async () => {
    await expect(lastValueFrom(client.send('order.stream', {}))).resolves.toBe(3);
  });

  it('hundreds of concurrent calls are correlated to their own replies', async () => {
    const ns = Array.from({ length: 300 }, (_, i) => i);
    const replies = await Promise.all(ns.map((n) => firstValueFrom(client.send<number>('order.echo', n))));
    expect(replies).toEqual(ns);
    expect(client.pendingCalls).toBe(0);
  });

  it('an RpcException reaches the caller as an AmqpRpcError with status, message and code', async () => {
    const err = await rejection(firstValueFrom(client.send('order.missing', {})));
    expect(err).toBeInstanceOf(AmqpRpcError);
    expect(err).toMatchObject({
      status: 'error',
      message: 'order not found',
      code: 'NOT_FOUND',
      pattern: 'order.missing',
    });
  });

  it('an unexpected error reaches the caller as Nest reports it (internal details hidden)', async () => {
    const err = await rejection(firstValueFrom(client.send('order.crash', {})));
    expect(err).toBeInstanceOf(AmqpRpcError);
    expect(err).toMatchObject({ status: 'error', message: 'Internal server error' });
  });

  it('times out with a TimeoutError naming the pattern; the late reply is dropped quietly', async () => {
    const debug: string[] = [];
    const droppedLate = deferred();
    const logger = {
      debug: (m: string) => {
        debug.push(m);
        if (m.includes('dropped a reply')) droppedLate.resolve();
      },
      warn: () => undefined,
      error: () => undefined,
    };
    const c = newClient({ logger });
    const finished = deferred();
    slowDone.push(finished.resolve);
    const started = Date.now();
    const err = await rejection(
      firstValueFrom(c.send('order.slow', new AmqpRecordBuilder(400).setOptions({ timeout: 150 }).build())),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toContain("'order.slow'");
    expect(Date.now() - started).toBeLessThan(400);
    await finished.promise;
    await droppedLate.promise;
    expect(c.pendingCalls).toBe(0);
  });

  it('a request nobody can route fails at once with UnroutableError (mandatory)', async () => {
    const started = Date.now();
    const err = await rejection(firstValueFrom(client.send('nobody.listens', {})));
    expect(err).toBeInstanceOf(UnroutableError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('replies through a private exclusive reply queue by option', async () => {
    const c = newClient({ replyTo: 'queue' });
    await expect(firstValueFrom(c.send('order.get', { id: 1 }))).resolves.toMatchObject({ id: 1 });
    const err = await rejection(firstValueFrom(c.send('order.missing', {})));
    expect(err).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a plain AMQP client (amqplib) calls a handler with reply_to + correlation_id and gets the reply', async () => {
    const ch = await probe.connection.createChannel();
    const replies: Array<{ correlationId: string; body: unknown; headers: Record<string, unknown> }> = [];
    const got = deferred();
    await ch.consume(
      'amq.rabbitmq.reply-to',
      (m) => {
        if (!m) return;
        replies.push({
          correlationId: m.properties.correlationId as string,
          body: JSON.parse(m.content.toString()),
          headers: m.properties.headers ?? {},
        });
        if (replies.length === 2) got.resolve();
      },
      { noAck: true },
    );
    const send = (routingKey: string, correlationId: string, body: unknown) =>
      ch.publish(exchange, routingKey, Buffer.from(JSON.stringify(body)), {
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId,
        contentType: 'application/json',
      });
    send('order.get', 'call-1', { id: 42 });
    send('order.missing', 'call-2', {});
    await got.promise;
    await ch.close();
    const byId = Object.fromEntries(replies.map((r) => [r.correlationId, r]));
    expect(byId['call-1'].body).toEqual({ id: 42, status: 'shipped', routingKey: 'order.get', pattern: 'order.get' });
    expect(byId['call-1'].headers[WarrenHeaders.ERROR]).toBeUndefined();
    expect(byId['call-2'].body).toEqual({ status: 'error', message: 'order not found', code: 'NOT_FOUND' });
    expect(byId['call-2'].headers[WarrenHeaders.ERROR]).toBe(true);
  });

  it('a request for a pattern the queue has no handler for gets an error reply', async () => {
    const c = newClient({ exchange: '', queue, timeout: 3000 });
    const err = await rejection(firstValueFrom(c.send('order.unknown', {})));
    expect(err).toMatchObject({ code: 'NO_HANDLER' });
    // Sent to the queue through the default exchange: the pattern travels in a header and still dispatches.
    await expect(firstValueFrom(c.send('order.get', { id: 3 }))).resolves.toMatchObject({ id: 3, routingKey: queue });
  });
});
