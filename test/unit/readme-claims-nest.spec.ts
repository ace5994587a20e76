import { Controller, type INestMicroservice } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { AmqpSession, NackError, type MessageProperties, type SessionRole } from '../../lib/amqp';
import { DeliveredMessage } from '../../lib/amqp/delivered-message';
import type { MethodName } from '../../lib/amqp/protocol/spec.generated';
import {
  AmqpClient,
  AmqpController,
  AmqpEventPattern,
  AmqpHealthCheckError,
  AmqpHealthIndicator,
  AmqpModule,
  AmqpServer,
  type AmqpClientOptions,
  type AmqpServerOptions,
} from '../../lib/nest';
import type { FakePeer } from '../support/fake-amqp-server';
import { FakeBroker, type Delivery, type FakeConsumer, type PublishedMessage } from '../support/fake-broker';
import { silentLogger } from '../support/leftovers';
import { deferred, rejection } from '../support/nest-support';

/**
 * README claims about the Nest layer (AmqpServer, AmqpModule, AmqpClient, AmqpHealthIndicator) proved against the
 * scripted fake server: it records every method a Nest app sends, in order, and lets a test confirm, nack or
 * withhold each publish, block a connection or drop it, which a shared live broker cannot do safely.
 */
jest.setTimeout(20_000);

/** Apps, clients and modules to close after each test: before the fake servers go (hooks run in this order). */
const apps: Array<{ close(): Promise<unknown> }> = [];
const brokers: FakeBroker[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const app of apps.splice(0).reverse()) await app.close().catch(() => undefined);
  for (const broker of brokers.splice(0)) await broker.close();
});

/** A fake RabbitMQ for one test, closed after the test's apps. */
async function startBroker(): Promise<FakeBroker> {
  const broker = await FakeBroker.start();
  brokers.push(broker);
  return broker;
}

/** A JSON message for `deliver`. */
function json(routingKey: string, body: unknown, properties: MessageProperties = {}): Delivery {
  return { routingKey, body: JSON.stringify(body), properties: { contentType: 'application/json', ...properties } };
}

/** Options every app here uses: no heartbeats (the fake sends none), quick reconnects, no logs. */
const quiet = { heartbeat: 0, logger: silentLogger, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } } as const;

async function standalone(
  controllers: Array<new (...args: never[]) => unknown>,
  options: AmqpServerOptions,
): Promise<INestMicroservice> {
  const moduleRef = await Test.createTestingModule({ controllers }).compile();
  const app = moduleRef.createNestMicroservice({ strategy: new AmqpServer({ ...quiet, ...options }), logger: false });
  apps.push(app);
  await app.listen();
  return app;
}

const TOPOLOGY_METHODS: MethodName[] = ['exchange.declare', 'queue.declare', 'queue.bind', 'exchange.bind'];

/** Every topology method sent comes before the first basic.consume; returns the topology methods sent. */
function expectTopologyBeforeConsumers(broker: FakeBroker): MethodName[] {
  const names = broker.names();
  const firstConsume = names.indexOf('basic.consume');
  expect(firstConsume).toBeGreaterThan(0);
  const lastTopology = Math.max(...TOPOLOGY_METHODS.map((m) => names.lastIndexOf(m)));
  expect(lastTopology).toBeLessThan(firstConsume);
  return names.filter((n) => TOPOLOGY_METHODS.includes(n));
}

describe('README: "All topology is declared before any consumer starts" (AmqpServer, AmqpModule)', () => {
  @AmqpController({
    queue: { name: 'orders.billing', durable: false },
    exchange: { name: 'orders', type: 'topic', durable: false },
    retry: { attempts: 3, delays: [100, 200] },
  })
  class BillingController {
    @AmqpEventPattern('order.created')
    created() {}

    @AmqpEventPattern('order.cancelled', {
      queue: { name: 'orders.cancellations', durable: false },
      bindings: [{ exchange: 'audit', routingKey: 'order.cancelled' }],
      topology: { exchanges: [{ name: 'audit', type: 'fanout', durable: false }] },
    })
    cancelled() {}
  }

  @Controller()
  class RpcController {
    @MessagePattern('orders.get', { queue: { name: 'orders.rpc', durable: false }, exchange: 'orders' })
    get() {
      return 1;
    }
  }

  const sharedTopology = {
    exchanges: [
      { name: 'events', type: 'topic', durable: false },
      { name: 'events.archive', type: 'fanout', durable: false },
    ],
    queues: [{ name: 'archive', durable: false }],
    bindings: [{ queue: 'archive', exchange: 'events.archive' }],
    exchangeBindings: [{ source: 'events', destination: 'events.archive', routingKey: '#' }],
  };

  it('a standalone AmqpServer sends every declare and bind (shared, per handler, retry queues) before its first basic.consume', async () => {
    const broker = await startBroker();
    await standalone([BillingController, RpcController], { url: broker.url(), topology: sharedTopology });

    const topology = expectTopologyBeforeConsumers(broker);
    for (const m of TOPOLOGY_METHODS) expect(topology).toContain(m);
    // Three work queues consumed, and the retry queues and parking lots declared (before them, as checked above).
    expect(broker.consumers.map((c) => c.queue).sort()).toEqual([
      'orders.billing',
      'orders.cancellations',
      'orders.rpc',
    ]);
    const declared = broker.log.filter((s) => s.name === 'queue.declare').map((s) => s.args.queue);
    expect(declared).toEqual(
      expect.arrayContaining(['orders.billing.retry.100', 'orders.billing.retry.200', 'orders.billing.parking-lot']),
    );
  });

  it("an AmqpModule app: module topology, then the DI-managed server's, all before the first basic.consume", async () => {
    const broker = await startBroker();
    const moduleRef = await Test.createTestingModule({
      imports: [
        AmqpModule.forRoot({
          ...quiet,
          url: broker.url(),
          topology: sharedTopology,
          publishers: [{ name: 'audit', exchange: { name: 'audit.out', type: 'fanout', durable: false } }],
          server: { topology: { queues: [{ name: 'server.extra', durable: false }] } },
        }),
      ],
      controllers: [BillingController, RpcController],
    }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
    apps.push(app);
    await app.listen();

    const topology = expectTopologyBeforeConsumers(broker);
    for (const m of TOPOLOGY_METHODS) expect(topology).toContain(m);
    const declared = broker.log.filter((s) => s.name.endsWith('.declare')).map((s) => s.args.exchange ?? s.args.queue);
    expect(declared).toEqual(expect.arrayContaining(['audit.out', 'server.extra', 'orders.billing.parking-lot']));
    expect(broker.consumers).toHaveLength(3);
  });
});

describe('README: AmqpHealthIndicator (isHealthy / status / check) follows the connection', () => {
  async function moduleApp(url: string): Promise<{ health: AmqpHealthIndicator; session: AmqpSession }> {
    const moduleRef = await Test.createTestingModule({ imports: [AmqpModule.forRoot({ ...quiet, url })] }).compile();
    apps.push(moduleRef);
    await moduleRef.init();
    return { health: moduleRef.get(AmqpHealthIndicator), session: moduleRef.get(AmqpSession) };
  }

  const blockedFrame = (peer: FakePeer) => peer.frame(0, 'connection.blocked', { reason: 'low on memory' });
  const event = (session: AmqpSession, name: 'blocked' | 'unblocked' | 'recovered', role: SessionRole) =>
    new Promise<void>((resolve) => {
      const on = (r: SessionRole) => {
        if (r !== role) return;
        session.off(name, on);
        resolve();
      };
      session.on(name, on);
    });

  it('reports blocked: true (still up) while the broker blocks a connection, and blocked: false once it unblocks', async () => {
    const broker = await startBroker();
    const { health, session } = await moduleApp(broker.url());
    expect(health.status()).toEqual({ amqp: { status: 'up', connection: 'default', blocked: false } });

    const blocked = event(session, 'blocked', 'publisher');
    broker.peer('publisher').write(blockedFrame(broker.peer('publisher')));
    await blocked;
    expect(health.isHealthy()).toBe(true);
    expect(health.status()).toEqual({ amqp: { status: 'up', connection: 'default', blocked: true } });
    await expect(health.check()).resolves.toMatchObject({ amqp: { status: 'up', blocked: true } });

    const unblocked = event(session, 'unblocked', 'publisher');
    broker.peer('publisher').send(0, 'connection.unblocked', {});
    await unblocked;
    expect(health.status().amqp.blocked).toBe(false);
  });

  it('stays blocked while either connection is blocked: unblocking one of two is not enough', async () => {
    const broker = await startBroker();
    const { health, session } = await moduleApp(broker.url());
    const both = Promise.all([event(session, 'blocked', 'publisher'), event(session, 'blocked', 'consumer')]);
    for (const role of ['publisher', 'consumer'] as const) broker.peer(role).write(blockedFrame(broker.peer(role)));
    await both;
    const unblocked = event(session, 'unblocked', 'consumer');
    broker.peer('consumer').send(0, 'connection.unblocked', {});
    await unblocked;
    expect(health.status().amqp.blocked).toBe(true);
  });

  it('reports a block that came with connection.open-ok, before the indicator existed (a broker already in alarm)', async () => {
    const broker = await startBroker();
    broker.withOpenOk = (peer) => [blockedFrame(peer)];
    const { health } = await moduleApp(broker.url());
    expect(health.status().amqp).toMatchObject({ status: 'up', blocked: true });
  });

  it('goes down when the broker is lost (check() throws AmqpHealthCheckError), and up again after recovery', async () => {
    const broker = await startBroker();
    const { health, session } = await moduleApp(broker.url());
    expect(health.isHealthy()).toBe(true);

    const reopen = broker.hold();
    const down = new Promise<void>((resolve) => session.once('disconnected', () => resolve()));
    for (const role of ['publisher', 'consumer'] as const) broker.peer(role).destroy();
    await down;
    expect(health.isHealthy()).toBe(false);
    expect(health.status().amqp.status).toBe('down');
    const err = await rejection(health.check());
    expect(err).toBeInstanceOf(AmqpHealthCheckError);
    expect(err.causes).toEqual({ amqp: { status: 'down', connection: 'default', blocked: false } });

    const recovered = Promise.all([event(session, 'recovered', 'publisher'), event(session, 'recovered', 'consumer')]);
    reopen();
    await recovered;
    expect(health.isHealthy()).toBe(true);
    await expect(health.check()).resolves.toMatchObject({ amqp: { status: 'up' } });
  });

  it('a block does not outlive its connection: blocked, then lost, then recovered on an unblocked connection', async () => {
    const broker = await startBroker();
    const { health, session } = await moduleApp(broker.url());
    const blocked = event(session, 'blocked', 'publisher');
    broker.peer('publisher').write(blockedFrame(broker.peer('publisher')));
    await blocked;
    expect(health.status().amqp.blocked).toBe(true);

    const recovered = event(session, 'recovered', 'publisher');
    broker.peer('publisher').destroy();
    await recovered;
    expect(health.status().amqp).toMatchObject({ status: 'up', blocked: false });
  });
});

describe("README: requests with replyTo: 'queue' are always confirmed; direct reply-to requests are not by default", () => {
  /** Far longer than any call here may take: a call that waited for it did not fail "at once". */
  const CALL_TIMEOUT_MS = 10_000;

  function client(url: string, options: AmqpClientOptions): AmqpClient {
    const c = new AmqpClient({ ...quiet, url, timeout: CALL_TIMEOUT_MS, ...options });
    apps.push(c);
    return c;
  }

  it.each<[string, AmqpClientOptions]>([
    ["replyTo: 'queue' (confirmRequests left false)", { replyTo: 'queue', confirmRequests: false }],
    ["replyTo: 'direct' with confirmRequests: true", { replyTo: 'direct', confirmRequests: true }],
  ])('%s: a broker nack of the request fails the call at once with NackError', async (_, options) => {
    const broker = await startBroker();
    broker.confirm = (m) => (m.routingKey === 'orders.get' ? 'nack' : 'ack');
    const c = client(broker.url(), options);
    const started = Date.now();
    const err = await rejection(firstValueFrom(c.send('orders.get', { id: 1 })));
    expect(err).toBeInstanceOf(NackError);
    expect(Date.now() - started).toBeLessThan(CALL_TIMEOUT_MS / 5);
    const request = await broker.publishTo('orders.get');
    expect(request.confirmMode).toBe(true);
    expect(c.pendingCalls).toBe(0);
  });

  it("replyTo: 'direct' with confirmRequests false: the request goes out on a channel without confirms; the reply alone ends the call", async () => {
    const broker = await startBroker();
    const c = client(broker.url(), { replyTo: 'direct', confirmRequests: false });
    const call = firstValueFrom(c.send('orders.get', { id: 1 }));

    const request = await broker.publishTo('orders.get');
    const replyConsumer = await broker.consumer('amq.rabbitmq.reply-to');
    expect(request.role).toBe('publisher');
    expect(request.channel).toBe(replyConsumer.channel); // direct reply-to: requests and replies share the channel
    expect(request.confirmMode).toBe(false);
    const selects = broker.log.filter(
      (s) => s.role === 'publisher' && s.channel === request.channel && s.name === 'confirm.select',
    );
    expect(selects).toHaveLength(0);

    const { correlationId, replyTo } = request.properties;
    expect(replyTo).toBe('amq.rabbitmq.reply-to');
    await broker.deliver(replyConsumer, [json('amq.gen-reply', { id: 1, total: 42 }, { correlationId })]);
    await expect(call).resolves.toEqual({ id: 1, total: 42 });
  });
});

describe('README: RPC replies fall back to the confirmed session publish, and the request is acked only after that confirm', () => {
  const REPLY_QUEUE = 'caller.replies';
  const started = { resolve: (): void => undefined };
  let release = deferred();

  @Controller()
  class OrdersRpc {
    @MessagePattern('orders.get', { queue: { name: 'orders.rpc', durable: false } })
    async get(@Payload() q: { id: number }) {
      started.resolve();
      await release.promise;
      return { id: q.id, total: 42 };
    }
  }

  /** A server whose replies to REPLY_QUEUE the broker receives but does not confirm until the test says so. */
  async function serverWithHeldReplies(): Promise<FakeBroker> {
    const broker = await startBroker();
    broker.confirm = (m) => (m.routingKey === REPLY_QUEUE ? 'none' : 'ack');
    await standalone([OrdersRpc], { url: broker.url() });
    return broker;
  }

  async function request(broker: FakeBroker, c: FakeConsumer): Promise<void> {
    const handlerStarted = new Promise<void>((resolve) => (started.resolve = resolve));
    await broker.deliver(c, [json('orders.get', { id: 7 }, { replyTo: REPLY_QUEUE, correlationId: 'call-7' })]);
    await handlerStarted;
  }

  /** Spies on the acks of delivered messages; `acked` resolves at the first one. */
  function spyOnAcks(): { spy: jest.SpyInstance; acked: Promise<void> } {
    const first = deferred();
    const original = DeliveredMessage.prototype.ack;
    const spy = jest.spyOn(DeliveredMessage.prototype, 'ack').mockImplementation(function (this: DeliveredMessage) {
      first.resolve();
      original.call(this);
    });
    return { spy, acked: first.promise };
  }

  async function expectReplyOnPublisherConnection(broker: FakeBroker): Promise<PublishedMessage> {
    const reply = await broker.publishTo(REPLY_QUEUE);
    expect(reply.role).toBe('publisher');
    expect(reply.confirmMode).toBe(true);
    const { properties, body } = reply;
    expect(properties.correlationId).toBe('call-7');
    expect(JSON.parse(body.toString())).toEqual({ id: 7, total: 42 });
    return reply;
  }

  beforeEach(() => {
    release = deferred();
  });

  it('the delivering channel closed while the handler ran: the reply goes out confirmed on the publisher connection; ack() only after the confirm', async () => {
    const broker = await serverWithHeldReplies();
    const consumer = await broker.consumer('orders.rpc');
    await request(broker, consumer);
    const { spy: ack, acked } = spyOnAcks();

    // The broker closes the channel that delivered the request (the request goes back to the queue).
    consumer.peer.send(consumer.channel, 'channel.close', {
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - closed by the test',
      classId: 0,
      methodId: 0,
    });
    await broker.consumer('orders.rpc', 1); // re-attached on a new channel
    release.resolve();

    const reply = await expectReplyOnPublisherConnection(broker);
    expect(broker.published.filter((p) => p.routingKey === REPLY_QUEUE)).toHaveLength(1);
    expect(ack).not.toHaveBeenCalled(); // the reply is not confirmed yet
    reply.ack();
    await acked;
    // That ack is dropped (its channel is gone): nothing reaches the broker for it, and the broker redelivers.
    expect(broker.log.filter((s) => s.role === 'consumer' && s.name === 'basic.ack')).toHaveLength(0);
  });

  it('the consumer connection blocked (resource alarm): the reply goes out confirmed on the publisher connection; the ack reaches the broker only after the confirm', async () => {
    const broker = await serverWithHeldReplies();
    const consumer = await broker.consumer('orders.rpc');
    consumer.peer.write(consumer.peer.frame(0, 'connection.blocked', { reason: 'low on memory' }));
    await request(broker, consumer);
    release.resolve();

    const reply = await expectReplyOnPublisherConnection(broker);
    // Nothing was published on the blocked connection, and the request is not acked before its reply's confirm.
    expect(broker.published.filter((p) => p.role === 'consumer')).toHaveLength(0);
    expect(broker.log.filter((s) => s.role === 'consumer' && s.name === 'basic.ack')).toHaveLength(0);
    reply.ack();
    const ack = await broker.until((s) => s.role === 'consumer' && s.name === 'basic.ack');
    expect(ack.channel).toBe(consumer.channel);
    expect(ack.args).toMatchObject({ deliveryTag: 1 });
  });
});
