import { Controller, type Type } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { ConfigError, type Logger, type MessageProperties } from '../../lib/amqp';
import { AmqpContext, AmqpServer, WarrenHeaders, type AmqpServerOptions } from '../../lib/nest';
import { FakeBroker, type FakeConsumer, type PublishedMessage } from '../support/fake-broker';
import { deferred, Recorder, rejection } from '../support/nest-support';

/**
 * README, Reference → Handlers, RPC errors, Message bodies, AmqpContext: what a Warren server does on the wire,
 * against a fake broker that records every qos, consume, publish and settlement (no RabbitMQ needed).
 */
jest.setTimeout(20_000);

let gate: Gate;
const quiet: Logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };
const brokers: FakeBroker[] = [];
const apps: Array<{ close(): Promise<unknown> }> = [];

afterEach(async () => {
  gate.release(); // a failed test leaves no handler blocked
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  for (const b of brokers.splice(0)) await b.close();
});

async function fakeBroker(): Promise<FakeBroker> {
  const b = await FakeBroker.start();
  brokers.push(b);
  return b;
}

/** A standalone Warren microservice with these controllers on the fake broker, listening. */
async function serve(broker: FakeBroker, controllers: Type[], options: AmqpServerOptions = {}): Promise<AmqpServer> {
  const moduleRef = await Test.createTestingModule({ controllers }).compile();
  const server = new AmqpServer({ url: broker.url(), heartbeat: 0, logger: quiet, shutdownTimeout: 2000, ...options });
  const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
  apps.push(app);
  await app.listen();
  return server;
}

const json = (value: unknown): { body: string; properties: MessageProperties } => ({
  body: JSON.stringify(value),
  properties: { contentType: 'application/json' },
});

/** Handlers that block until released, recording what started. */
class Gate {
  readonly started = new Recorder<unknown>();
  private readonly open = deferred();

  async pass(value: unknown): Promise<void> {
    this.started.push(value);
    await this.open.promise;
  }

  release(): void {
    this.open.resolve();
  }
}

beforeEach(() => (gate = new Gate()));

describe('handler defaults (README): prefetch 10, concurrency = prefetch, unlimited with prefetch 0', () => {
  @Controller()
  class DefaultsController {
    @EventPattern('work', { queue: 'defaults' })
    work(@Payload() n: number) {
      return gate.pass(n);
    }

    @EventPattern('work', { queue: 'unlimited', prefetch: 0 })
    unlimited(@Payload() n: number) {
      return gate.pass(n);
    }
  }

  it('a handler with no prefetch consumes with basic.qos 10 and runs at most 10 handlers at once', async () => {
    const broker = await fakeBroker();
    await serve(broker, [DefaultsController]);
    const consumer = await broker.consumer('defaults');
    expect(consumer.prefetch).toBe(10);

    // The fake broker ignores qos: 12 deliveries reach the server, only the concurrency bound holds them back.
    const tags = await broker.deliver(
      consumer,
      Array.from({ length: 12 }, (_, i) => ({ routingKey: 'work', ...json(i) })),
    );
    await gate.started.waitFor(10);
    expect(gate.started.items).toHaveLength(10);
    gate.release();
    await gate.started.waitFor(12);
    await broker.settlement(consumer, tags[11]);
  });

  it('prefetch 0 sends no basic.qos and runs every delivered message at once', async () => {
    const broker = await fakeBroker();
    await serve(broker, [DefaultsController]);
    const consumer = await broker.consumer('unlimited');
    expect(consumer.prefetch).toBeUndefined();
    await broker.deliver(
      consumer,
      Array.from({ length: 40 }, (_, i) => ({ routingKey: 'work', ...json(i) })),
    );
    // All 40 are running before any of them finished.
    await gate.started.waitFor(40);
    gate.release();
  });
});

describe('one consumer per queue (README): the largest prefetch, concurrency and priority among its handlers win', () => {
  @Controller()
  class SharedController {
    @EventPattern('a', { queue: 'shared', prefetch: 2, concurrency: 1, priority: 1 })
    a(@Payload() n: number) {
      return gate.pass(n);
    }

    @EventPattern('b', { queue: 'shared', prefetch: 6, priority: 5 })
    b(@Payload() n: number) {
      return gate.pass(n);
    }

    @EventPattern('c', { queue: 'shared', concurrency: 3 })
    c(@Payload() n: number) {
      return gate.pass(n);
    }
  }

  it('three handlers on one queue: one consumer with qos 6, x-priority 5 and at most 3 handlers running', async () => {
    const broker = await fakeBroker();
    await serve(broker, [SharedController]);
    const consumer = await broker.consumer('shared');
    expect(broker.consumers.filter((c) => c.queue === 'shared')).toHaveLength(1);
    expect(consumer.prefetch).toBe(6);
    expect(consumer.arguments).toEqual({ 'x-priority': 5 });

    const keys = ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'];
    const tags = await broker.deliver(
      consumer,
      keys.map((k, i) => ({ routingKey: k, ...json(i) })),
    );
    await gate.started.waitFor(3);
    expect(gate.started.items).toHaveLength(3);
    gate.release();
    await gate.started.waitFor(keys.length);
    await broker.settlement(consumer, tags[tags.length - 1]);
  });
});
