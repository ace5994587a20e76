import { Controller, type Type } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { ConfigError, type Logger, type MessageProperties } from '../../lib/amqp';
import { AmqpContext, AmqpServer, WarrenHeaders, type AmqpServerOptions } from '../../lib/nest';
import { FakeBroker, type PublishedMessage } from '../support/fake-broker';
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

describe('exchange and bindings (README): a handler with neither binds nothing', () => {
  @Controller()
  class UnboundController {
    @EventPattern('plain', { queue: 'unbound' })
    plain(@Payload() n: number) {
      return gate.pass(n);
    }

    @EventPattern('listed', { queue: 'unbound-too', exchange: 'events', bindings: [] })
    listed(@Payload() n: number) {
      return gate.pass(n);
    }
  }

  it('no queue.bind is sent for a handler without exchange and bindings, nor for one with bindings: []', async () => {
    const broker = await fakeBroker();
    gate.release();
    await serve(broker, [UnboundController]);
    await broker.consumer('unbound');
    await broker.consumer('unbound-too');
    expect(broker.methods('queue.bind')).toEqual([]);
    // Its queue gets what is published to it through the default exchange.
    const consumer = await broker.consumer('unbound');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'unbound', ...json(1) }]);
    await broker.settlement(consumer, tag);
    expect(gate.started.items).toEqual([1]);
  });
});

describe('handlers sharing a pattern (README)', () => {
  @Controller()
  class TwiceController {
    @EventPattern('order.created', { queue: 'twice' })
    first(@Payload() order: { id: number }) {
      gate.started.push(`first ${order.id}`);
    }

    @EventPattern('order.created', { queue: 'twice' })
    second(@Payload() order: { id: number }) {
      gate.started.push(`second ${order.id}`);
    }
  }

  @Controller()
  class MixedController {
    @MessagePattern('order.get', { queue: 'mixed' })
    get() {
      return 1;
    }

    @EventPattern('order.get', { queue: 'mixed' })
    seen(@Payload() _order: unknown) {
      return undefined;
    }
  }

  it('two event handlers with the same pattern on one queue both run for one message, which is acked once', async () => {
    const broker = await fakeBroker();
    await serve(broker, [TwiceController]);
    const consumer = await broker.consumer('twice');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'order.created', ...json({ id: 7 }) }]);
    await gate.started.waitFor(2);
    expect(gate.started.items.sort()).toEqual(['first 7', 'second 7']);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    expect(broker.settlementsOf(consumer)).toHaveLength(1);
  });

  it('a request handler and an event handler with the same pattern on one queue stop start-up with a ConfigError', async () => {
    const broker = await fakeBroker();
    const err = await rejection(serve(broker, [MixedController]));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe("handler 'order.get'");
    expect(err.message).toContain('only event handlers may share one');
    expect(broker.methods('basic.consume')).toEqual([]);
  });
});

/** The reply the server published for the request with this correlation id. */
function replyTo(broker: FakeBroker, correlationId: string): Promise<PublishedMessage> {
  return broker.publishedMessage((m) => m.properties.correlationId === correlationId);
}

const bodyOf = (m: PublishedMessage): unknown => JSON.parse(m.body.toString());

describe('a request without reply_to (README): handled as an event', () => {
  @Controller()
  class RequestsController {
    @MessagePattern('double', { queue: 'requests' })
    double(@Payload() n: number) {
      gate.started.push(n);
      return n * 2;
    }

    @MessagePattern('fail', { queue: 'requests' })
    fail() {
      throw new RpcException('cannot');
    }

    @MessagePattern('fail', { queue: 'requests-retried', retry: { attempts: 3, delays: [1000] } })
    failRetried() {
      throw new RpcException('cannot');
    }
  }

  it('its value is dropped (nothing published) and it is acked', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RequestsController]);
    const consumer = await broker.consumer('requests');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'double', ...json(21) }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    expect(gate.started.items).toEqual([21]);
    expect(broker.published).toEqual([]);
  });

  it('a failure with no retry policy is nacked without requeue, and no error reply is published', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RequestsController]);
    const consumer = await broker.consumer('requests');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'fail', ...json(1) }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.nack', requeue: false });
    expect(broker.published).toEqual([]);
  });

  it('a failure under a retry policy goes to the retry queue (confirmed), then the request is acked', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RequestsController]);
    const consumer = await broker.consumer('requests-retried');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'fail', ...json(1) }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    expect(broker.published.map((m) => [m.exchange, m.routingKey])).toEqual([['', 'requests-retried.retry.1000']]);
  });
});

describe("ack: 'manual' (README): a request that fails unsettled", () => {
  @Controller()
  class ManualController {
    @MessagePattern('fail', { queue: 'manual', ack: 'manual' })
    fail() {
      throw new RpcException({ message: 'no stock', code: 'NO_STOCK' });
    }
  }

  it('gets its error reply, then is nacked without requeue on the same channel', async () => {
    const broker = await fakeBroker();
    await serve(broker, [ManualController]);
    const consumer = await broker.consumer('manual');
    const [tag] = await broker.deliver(consumer, [
      {
        routingKey: 'fail',
        body: '{}',
        properties: { contentType: 'application/json', replyTo: 'replies', correlationId: 'c-1' },
      },
    ]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.nack', requeue: false });
    const reply = await replyTo(broker, 'c-1');
    expect(reply.routingKey).toBe('replies');
    expect(bodyOf(reply)).toEqual({ status: 'error', message: 'no stock', code: 'NO_STOCK' });
    // The reply went out before the nack, on the channel that delivered the request.
    const sent = consumer.peer.received.filter((r) => r.channel === consumer.channel).map((r) => r.method.name);
    expect(sent.indexOf('basic.publish')).toBeGreaterThanOrEqual(0);
    expect(sent.indexOf('basic.publish')).toBeLessThan(sent.indexOf('basic.nack'));
  });
});

/**
 * A content-header payload (class 60) whose headers table holds a field of an unknown type, followed by reply_to
 * and correlation_id: the properties parse, reading the headers throws.
 */
function unreadableHeadersPayload(bodySize: number, replyTo: string, correlationId: string): Buffer {
  const field = Buffer.concat([Buffer.from([1]), Buffer.from('a'), Buffer.from('Z'), Buffer.from([0, 0, 0, 0])]);
  const table = Buffer.alloc(4 + field.length);
  table.writeUInt32BE(field.length, 0);
  field.copy(table, 4);
  const short = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
  const head = Buffer.alloc(14);
  head.writeUInt16BE(60, 0); // class basic
  head.writeUInt16BE(0, 2); // weight
  head.writeBigUInt64BE(BigInt(bodySize), 4);
  head.writeUInt16BE(0x2000 | 0x0400 | 0x0200, 12); // headers, correlation-id, reply-to
  return Buffer.concat([head, table, short(correlationId), short(replyTo)]);
}

describe('unreadable messages (README): error codes and rejections', () => {
  @Controller()
  class BodiesController {
    @MessagePattern('echo', { queue: 'bodies' })
    echo(@Payload() value: unknown) {
      gate.started.push(value);
      return value;
    }

    @MessagePattern('bigint', { queue: 'bodies' })
    bigint() {
      gate.started.push('bigint');
      return { n: BigInt(1) };
    }
  }

  it('a request whose body is invalid JSON gets a DESERIALIZATION_FAILED reply and is rejected without requeue', async () => {
    const broker = await fakeBroker();
    await serve(broker, [BodiesController]);
    const consumer = await broker.consumer('bodies');
    const [tag] = await broker.deliver(consumer, [
      {
        routingKey: 'echo',
        body: '{not json',
        properties: { contentType: 'application/json', replyTo: 'replies', correlationId: 'c-bad' },
      },
    ]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.reject', requeue: false });
    const reply = await replyTo(broker, 'c-bad');
    expect(bodyOf(reply)).toMatchObject({ status: 'error', code: 'DESERIALIZATION_FAILED' });
    expect(reply.properties.headers).toEqual({ [WarrenHeaders.ERROR]: true });
    expect(gate.started.items).toEqual([]);
  });

  it('a return value that cannot be serialized gets a SERIALIZATION_FAILED reply; the handler ran and the request is acked', async () => {
    const broker = await fakeBroker();
    await serve(broker, [BodiesController]);
    const consumer = await broker.consumer('bodies');
    const [tag] = await broker.deliver(consumer, [
      {
        routingKey: 'bigint',
        body: '{}',
        properties: { contentType: 'application/json', replyTo: 'replies', correlationId: 'c-big' },
      },
    ]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    expect(bodyOf(await replyTo(broker, 'c-big'))).toMatchObject({ status: 'error', code: 'SERIALIZATION_FAILED' });
    expect(gate.started.items).toEqual(['bigint']);
  });

  it('a message whose headers table cannot be decoded is rejected without requeue and without a reply', async () => {
    const broker = await fakeBroker();
    await serve(broker, [BodiesController]);
    const consumer = await broker.consumer('bodies');
    const body = Buffer.from('1');
    const [bad, good] = await broker.deliver(consumer, [
      { routingKey: 'echo', body, headerPayload: unreadableHeadersPayload(body.length, 'replies', 'c-headers') },
      { routingKey: 'echo', body: '2', properties: { replyTo: 'replies', correlationId: 'c-ok' } },
    ]);
    expect(await broker.settlement(consumer, bad)).toMatchObject({ method: 'basic.reject', requeue: false });
    // The next message is served: its reply is the only publish.
    await broker.settlement(consumer, good);
    await replyTo(broker, 'c-ok');
    expect(broker.published.map((m) => m.properties.correlationId)).toEqual(['c-ok']);
    expect(gate.started.items).toEqual([2]);
  });
});

describe('RPC errors and replies (README)', () => {
  @Controller()
  class RepliesController {
    @MessagePattern('get', { queue: 'replies-q' })
    get() {
      return { id: 1 };
    }

    @MessagePattern('invalid', { queue: 'replies-q' })
    invalid() {
      throw new RpcException({ message: 'bad order', code: 'INVALID', fields: ['total'], retryable: false });
    }
  }

  const request = (routingKey: string, correlationId: string) => ({
    routingKey,
    body: '{}',
    properties: {
      contentType: 'application/json',
      replyTo: 'caller-replies',
      correlationId,
      messageId: `m-${correlationId}`,
      deliveryMode: 2,
      priority: 3,
      headers: { trace: 'abc' },
      appId: 'caller',
    } satisfies MessageProperties,
  });

  it('an object thrown through RpcException keeps its other JSON fields in the error reply', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RepliesController]);
    const consumer = await broker.consumer('replies-q');
    await broker.deliver(consumer, [request('invalid', 'c-err')]);
    expect(bodyOf(await replyTo(broker, 'c-err'))).toEqual({
      status: 'error',
      message: 'bad order',
      code: 'INVALID',
      fields: ['total'],
      retryable: false,
    });
  });

  it('a reply is transient and not mandatory, and carries only the correlation id, the content type and (errors) the headers', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RepliesController]);
    const consumer = await broker.consumer('replies-q');
    await broker.deliver(consumer, [request('get', 'c-value'), request('invalid', 'c-error')]);
    const value = await replyTo(broker, 'c-value');
    const error = await replyTo(broker, 'c-error');
    for (const reply of [value, error]) {
      expect(reply).toMatchObject({ exchange: '', routingKey: 'caller-replies', mandatory: false });
    }
    expect(value.properties.toJSON()).toEqual({ contentType: 'application/json', correlationId: 'c-value' });
    expect(error.properties.toJSON()).toEqual({
      contentType: 'application/json',
      correlationId: 'c-error',
      headers: { [WarrenHeaders.ERROR]: true },
    });
  });
});

describe('AmqpContext (README)', () => {
  let seen: AmqpContext[] = [];
  beforeEach(() => (seen = []));

  @Controller()
  class ContextController {
    @EventPattern('look', { queue: 'ctx' })
    look(@Ctx() ctx: AmqpContext) {
      seen.push(ctx);
    }

    @EventPattern('nack', { queue: 'ctx-manual', ack: 'manual' })
    nack(@Ctx() ctx: AmqpContext) {
      ctx.nack();
    }

    @EventPattern('reject', { queue: 'ctx-manual', ack: 'manual' })
    reject(@Ctx() ctx: AmqpContext) {
      ctx.reject();
    }

    @EventPattern('settle', { queue: 'ctx-none', ack: 'none' })
    settle(@Ctx() ctx: AmqpContext) {
      ctx.ack();
      ctx.nack();
      ctx.reject();
      seen.push(ctx);
    }
  }

  it('getHeaders() is {} for a message without headers', async () => {
    const broker = await fakeBroker();
    await serve(broker, [ContextController]);
    const consumer = await broker.consumer('ctx');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'look', body: '1' }]);
    await broker.settlement(consumer, tag);
    expect(seen[0].getProperties().headers).toBeUndefined();
    expect(seen[0].getHeaders()).toEqual({});
  });

  it('nack() requeues by default; reject() does not', async () => {
    const broker = await fakeBroker();
    await serve(broker, [ContextController]);
    const consumer = await broker.consumer('ctx-manual');
    const [nacked, rejected] = await broker.deliver(consumer, [
      { routingKey: 'nack', body: '1' },
      { routingKey: 'reject', body: '2' },
    ]);
    expect(await broker.settlement(consumer, nacked)).toMatchObject({ method: 'basic.nack', requeue: true });
    expect(await broker.settlement(consumer, rejected)).toMatchObject({ method: 'basic.reject', requeue: false });
  });

  it("in ack: 'none' mode the consumer is no-ack and ack(), nack() and reject() send nothing", async () => {
    const broker = await fakeBroker();
    await serve(broker, [ContextController]);
    const consumer = await broker.consumer('ctx-none');
    expect(consumer.noAck).toBe(true);
    await broker.deliver(consumer, [{ routingKey: 'settle', body: '1' }]);
    // A later delivery on another queue is settled: by then the first handler has long run.
    const probe = await broker.consumer('ctx');
    const [tag] = await broker.deliver(probe, [{ routingKey: 'look', body: '2' }]);
    await broker.settlement(probe, tag);
    expect(seen.map((c) => c.getQueue()).sort()).toEqual(['ctx', 'ctx-none']);
    expect(broker.settlementsOf(consumer)).toEqual([]);
  });
});

describe('retries and the parking lot (README): the copies', () => {
  const longMessage = 'x'.repeat(1500);

  @Controller()
  class RetryController {
    @EventPattern('fail', { queue: { name: 'work-transient', durable: false }, retry: { attempts: 3, delays: [1000] } })
    transient(@Payload() _event: unknown) {
      throw new RpcException(longMessage);
    }

    @EventPattern('fail', { queue: 'work-named', retry: { attempts: 2, delays: [500] } })
    named(@Payload() _event: unknown) {
      throw new RpcException('failed');
    }

    @EventPattern('fail', { queue: { name: 'work-once', durable: true }, retry: { attempts: 1 } })
    once(@Payload() _event: unknown) {
      throw new RpcException('failed');
    }
  }

  const original: MessageProperties = {
    contentType: 'application/json',
    deliveryMode: 1,
    expiration: '60000',
    messageId: 'm-1',
    type: 'order',
    appId: 'shop',
    headers: { trace: 't-1' },
  };

  it('retry queues and parking lots are always durable, also for a transient work queue (RabbitMQ 4.3)', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RetryController]);
    const declared = Object.fromEntries(
      broker
        .methods('queue.declare')
        .filter((d) => !d.args.passive)
        .map((d) => [d.args.queue, d.args.durable]),
    );
    expect(declared).toMatchObject({
      'work-transient.retry.1000': true,
      'work-transient.parking-lot': true,
      'work-named.retry.500': true,
      'work-named.parking-lot': true,
      'work-once.parking-lot': true,
    });
  });

  it("a retry copy keeps the original's body and properties but its per-message TTL, and cuts the error message to 1 000 characters", async () => {
    const broker = await fakeBroker();
    await serve(broker, [RetryController]);
    const consumer = await broker.consumer('work-transient');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'fail', body: '{"id":1}', properties: original }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    const copy = await broker.publishedMessage((m) => m.routingKey === 'work-transient.retry.1000');
    expect(copy.exchange).toBe('');
    expect(copy.body.toString()).toBe('{"id":1}');
    const { headers, ...properties } = copy.properties.toJSON();
    expect(properties).toEqual({
      contentType: 'application/json',
      deliveryMode: 1,
      messageId: 'm-1',
      type: 'order',
      appId: 'shop',
    });
    expect(headers).toMatchObject({ trace: 't-1', [WarrenHeaders.ATTEMPT]: 2 });
    const errorMessage = String(headers?.[WarrenHeaders.ERROR_MESSAGE]);
    expect(errorMessage.length).toBeLessThanOrEqual(1000);
    expect(errorMessage.length).toBeGreaterThanOrEqual(999);
    expect(longMessage.startsWith(errorMessage.replace(/…$/, ''))).toBe(true);
  });

  it('a parked message is persistent, even when the original was transient', async () => {
    const broker = await fakeBroker();
    await serve(broker, [RetryController]);
    const consumer = await broker.consumer('work-once');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'fail', body: '{"id":2}', properties: original }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.ack' });
    const parked = await broker.publishedMessage((m) => m.routingKey === 'work-once.parking-lot');
    expect(parked.properties.deliveryMode).toBe(2);
    expect(parked.properties.expiration).toBeUndefined();
  });

  it('a copy the broker does not confirm (nack) requeues the original', async () => {
    const broker = await fakeBroker();
    broker.confirm = (m) => (m.routingKey === 'work-named.retry.500' ? 'nack' : 'ack');
    await serve(broker, [RetryController]);
    const consumer = await broker.consumer('work-named');
    const [tag] = await broker.deliver(consumer, [{ routingKey: 'fail', body: '{"id":3}', properties: original }]);
    expect(await broker.settlement(consumer, tag)).toMatchObject({ method: 'basic.nack', requeue: true });
    expect(broker.published.map((m) => m.routingKey)).toEqual(['work-named.retry.500']);
  });
});
