import * as net from 'node:net';
import { Module } from '@nestjs/common';
import { z } from 'zod';
import { ConfigError } from '../../lib/amqp';
import {
  AmqpController,
  AmqpEventPattern,
  AmqpMessagePattern,
  AmqpModule,
  generateAsyncApi,
  type AsyncApiDocument,
} from '../../lib/nest';
import { asyncApiProblems } from '../support/asyncapi';
import { rejection } from '../support/nest-support';

jest.setTimeout(30_000);

/** A TCP port that counts who connects to it (and hangs up on them): the "broker" of these apps. */
async function countingPort(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `amqp://guest:secret@127.0.0.1:${port}/shop`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const cartQuery = {
  type: 'object',
  required: ['cartId'],
  properties: { cartId: { type: 'string', minLength: 1 } },
  additionalProperties: false,
} as const;

const orderPlaced = z.object({ orderId: z.number().int(), lines: z.array(z.string()).min(1) });

@AmqpController({ exchange: 'shop' })
class CartController {
  @AmqpMessagePattern('cart.get', { queue: 'shop.rpc', schema: cartQuery })
  get(): unknown {
    return {};
  }
}

@AmqpController({ queue: { name: 'shop.orders', messageTtl: 60_000 }, exchange: 'shop' })
class OrdersController {
  @AmqpEventPattern('order.placed', { retry: { attempts: 3, delays: [100, 100] }, schema: orderPlaced })
  placed(): void {}

  @AmqpEventPattern('order.*')
  any(): void {}
}

@AmqpController()
class OtherController {
  // Bound by the module topology's headers binding only.
  @AmqpEventPattern('audit', { queue: 'shop.audit', bindings: [] })
  audit(): void {}

  @AmqpEventPattern('cache.flush', { queue: { name: '' }, exchange: 'shop', ack: 'none' })
  flush(): void {}
}

@Module({ imports: [AmqpModule.forFeature({ publishers: [{ name: 'audit', exchange: 'amq.topic' }] })] })
class AuditModule {}

function shopModule(url: string): object {
  @Module({
    imports: [
      AmqpModule.forRoot({
        url,
        topology: {
          exchanges: [
            { name: 'shop', type: 'topic' },
            { name: 'shop.headers', type: 'headers', durable: false },
            { name: 'shop.delayed', type: 'x-delayed-message', arguments: { 'x-delayed-type': 'topic' } },
          ],
          exchangeBindings: [{ source: 'shop', destination: 'shop.delayed', routingKey: '#' }],
          queues: [{ name: 'shop.audit', type: 'quorum' }],
          bindings: [{ queue: 'shop.audit', exchange: 'shop.headers', arguments: { 'x-match': 'all', kind: 'audit' } }],
        },
        publishers: [{ name: 'events', exchange: 'shop', routingKey: 'shop.event', persistent: false }],
        client: { queue: 'shop.rpc', timeout: 2_000 },
      }),
      AuditModule,
    ],
    controllers: [CartController, OrdersController, OtherController],
  })
  class ShopModule {}
  return ShopModule;
}

describe('generateAsyncApi: the AsyncAPI 3.0 document of an application module', () => {
  let broker: Awaited<ReturnType<typeof countingPort>>;
  let doc: AsyncApiDocument;

  beforeAll(async () => {
    broker = await countingPort();
    doc = await generateAsyncApi(shopModule(broker.url) as never, {
      info: { title: 'shop', version: '2.1.0' },
      logger: false,
    });
  });

  afterAll(() => broker.close());

  it('boots the module without opening a connection, and the document validates against the official schema', () => {
    expect(broker.connections()).toBe(0);
    expect(asyncApiProblems(doc)).toEqual([]);
    expect(doc.info).toEqual({ title: 'shop', version: '2.1.0' });
    // The connection's endpoint, never its password.
    expect(doc.servers).toEqual({
      default: expect.objectContaining({ host: expect.stringMatching(/^127\.0\.0\.1:\d+$/), protocol: 'amqp' }),
    });
    expect(doc.servers.default.pathname).toBe('/shop');
    expect(JSON.stringify(doc)).not.toContain('secret');
  });

  it('exchanges are channels with their AMQP binding: type, durability, arguments, exchange-to-exchange bindings', () => {
    expect(doc.channels['exchange.shop'].bindings?.amqp).toEqual({
      is: 'routingKey',
      exchange: { name: 'shop', type: 'topic', durable: true, autoDelete: false, vhost: 'shop' },
      bindingVersion: '0.3.0',
    });
    expect(doc.channels['exchange.shop.headers'].bindings?.amqp.exchange).toMatchObject({
      type: 'headers',
      durable: false,
    });
    // A plugin's exchange type is outside the binding's enum: it is an extension.
    const delayed = doc.channels['exchange.shop.delayed'];
    expect(delayed.bindings?.amqp.exchange?.type).toBeUndefined();
    expect(delayed.bindings?.amqp['x-exchange-type']).toBe('x-delayed-message');
    expect(delayed.bindings?.amqp['x-arguments']).toEqual({ 'x-delayed-type': 'topic' });
    expect(delayed['x-warren-bindings']).toEqual([{ exchange: 'shop', routingKey: '#' }]);
  });

  it('queues are channels with their AMQP binding, arguments and the bindings that feed them', () => {
    expect(doc.channels['queue.shop.audit']).toMatchObject({
      address: 'shop.audit',
      bindings: {
        amqp: {
          is: 'queue',
          queue: { name: 'shop.audit', durable: true, exclusive: false, autoDelete: false, vhost: 'shop' },
          'x-arguments': { 'x-queue-type': 'quorum' },
        },
      },
      'x-warren-bindings': [
        { exchange: 'shop.headers', routingKey: '', arguments: { 'x-match': 'all', kind: 'audit' } },
      ],
    });
    expect(doc.channels['queue.shop.orders'].bindings?.amqp['x-arguments']).toEqual({ 'x-message-ttl': 60_000 });
    expect(doc.channels['queue.shop.orders']['x-warren-bindings']).toEqual([
      { exchange: 'shop', routingKey: 'order.placed' },
      { exchange: 'shop', routingKey: 'order.*' },
    ]);
    const serverNamed = doc.channels['queue.server-named'];
    expect(serverNamed.address).toBeNull();
    expect(serverNamed.bindings?.amqp.queue).toEqual({
      durable: false,
      exclusive: true,
      autoDelete: true,
      vhost: 'shop',
    });
  });

  it('every handler is a receive operation on its queue; a request handler has its reply and the error reply', () => {
    expect(doc.operations['receive.shop.rpc.cart.get']).toEqual({
      action: 'receive',
      channel: { $ref: '#/channels/queue.shop.rpc' },
      summary: "Handles the request 'cart.get' from queue 'shop.rpc'.",
      description: expect.stringContaining('VALIDATION_FAILED'),
      messages: [{ $ref: '#/channels/queue.shop.rpc/messages/cart.get' }],
      reply: {
        address: expect.objectContaining({ location: '$message.header#/replyTo' }),
        channel: { $ref: '#/channels/reply-to' },
        messages: [
          { $ref: '#/channels/reply-to/messages/cart.get.reply' },
          { $ref: '#/channels/reply-to/messages/rpc.error' },
        ],
      },
      bindings: { amqp: { ack: true, bindingVersion: '0.3.0' } },
    });
    expect(doc.components.messages['rpc.error'].payload).toMatchObject({ required: ['status', 'message'] });
    expect(doc.operations['receive.server-named.cache.flush'].bindings?.amqp.ack).toBe(false);
    expect(Object.keys(doc.operations).filter((id) => id.startsWith('receive.'))).toEqual([
      'receive.shop.rpc.cart.get',
      'receive.shop.orders.order.placed',
      'receive.shop.orders.order._',
      'receive.shop.audit.audit',
      'receive.server-named.cache.flush',
    ]);
  });

  it('a handler’s schema is its message’s payload: a JSON Schema as given, a Standard Schema’s own JSON Schema (zod)', () => {
    expect(doc.components.messages['cart.get'].payload).toEqual(cartQuery);
    expect(doc.components.messages['order.placed'].payload).toMatchObject({
      type: 'object',
      required: ['orderId', 'lines'],
      properties: { orderId: { type: 'integer' }, lines: { type: 'array', minItems: 1 } },
    });
    expect(doc.components.messages['order._'].payload).toBeUndefined();
  });

  it('an exchange channel carries the messages its bindings route to the handlers', () => {
    expect(Object.keys(doc.channels['exchange.shop'].messages)).toEqual([
      'cart.get',
      'order.placed',
      'order._',
      'cache.flush',
    ]);
    expect(Object.keys(doc.channels['exchange.shop.headers'].messages)).toEqual(['audit']);
  });

  it('retry queues and the parking lot are channels, and what the server sends there is a send operation', () => {
    expect(doc.channels['queue.shop.orders.retry.100']).toMatchObject({
      address: 'shop.orders.retry.100',
      messages: { 'order.placed': { $ref: '#/components/messages/order.placed' } },
      bindings: {
        amqp: {
          'x-arguments': {
            'x-message-ttl': 100,
            'x-dead-letter-exchange': '',
            'x-dead-letter-routing-key': 'shop.orders',
          },
        },
      },
    });
    expect(doc.operations['receive.shop.orders.order.placed']['x-warren-retry']).toEqual({
      attempts: 3,
      delays: [100, 100],
      parkingLot: 'shop.orders.parking-lot',
    });
    expect(doc.operations['retry.shop.orders.100']).toMatchObject({
      action: 'send',
      channel: { $ref: '#/channels/queue.shop.orders.retry.100' },
      messages: [{ $ref: '#/channels/queue.shop.orders.retry.100/messages/order.placed' }],
    });
    expect(doc.operations['park.shop.orders']).toMatchObject({
      action: 'send',
      channel: { $ref: '#/channels/queue.shop.orders.parking-lot' },
    });
  });

  it('every publisher (the module’s and forFeature’s) and the client’s target are send operations', () => {
    expect(doc.operations['publish.events']).toMatchObject({
      action: 'send',
      channel: { $ref: '#/channels/exchange.shop' },
      bindings: { amqp: { deliveryMode: 1, mandatory: false, cc: ['shop.event'] } },
    });
    expect(doc.operations['publish.audit'].channel).toEqual({ $ref: '#/channels/exchange.amq.topic' });
    expect(doc.channels['exchange.amq.topic'].bindings?.amqp.exchange).toEqual({
      name: 'amq.topic',
      type: 'topic',
      vhost: 'shop',
    });
    expect(doc.operations['client.send']).toMatchObject({
      action: 'send',
      channel: { $ref: '#/channels/queue.shop.rpc' },
      bindings: { amqp: { deliveryMode: 1, mandatory: true, expiration: 2_000 } },
      reply: { channel: { $ref: '#/channels/client.reply-to' } },
    });
    expect(doc.channels['client.reply-to'].address).toBe('amq.rabbitmq.reply-to');
    expect(doc.operations['client.emit']).toMatchObject({
      channel: { $ref: '#/channels/queue.shop.rpc' },
      bindings: { amqp: { deliveryMode: 2, mandatory: false } },
    });
  });

  it('is the same document every time (deterministic, so that a committed copy can be checked)', async () => {
    const again = await generateAsyncApi(shopModule(broker.url) as never, {
      info: { title: 'shop', version: '2.1.0' },
      logger: false,
    });
    expect(JSON.stringify(again)).toBe(JSON.stringify(doc));
  });
});

describe('generateAsyncApi: ids', () => {
  it('a pattern that looks like one of Warren’s own message ids gets another id: the error reply stays the envelope', async () => {
    @AmqpController({ queue: 'odd' })
    class OddController {
      @AmqpMessagePattern('rpc.error')
      error(): void {}

      @AmqpMessagePattern('rpc.error.reply')
      reply(): void {}
    }
    @Module({ imports: [AmqpModule.forRoot({ url: 'amqp://127.0.0.1:1' })], controllers: [OddController] })
    class OddModule {}
    const doc = await generateAsyncApi(OddModule, { logger: false });
    expect(asyncApiProblems(doc)).toEqual([]);
    expect(doc.components.messages['rpc.error'].name).toBe('error reply');
    expect(Object.keys(doc.components.messages)).toEqual([
      'rpc.error-2',
      'rpc.error',
      'rpc.error-2.reply',
      'rpc.error.reply',
      'rpc.error.reply.reply',
    ]);
    expect(doc.operations['receive.odd.rpc.error'].reply?.messages).toEqual([
      { $ref: '#/channels/reply-to/messages/rpc.error-2.reply' },
      { $ref: '#/channels/reply-to/messages/rpc.error' },
    ]);
  });
});

describe('generateAsyncApi refuses what start-up would refuse', () => {
  it('a connection the module does not have is a ConfigError naming the connection', async () => {
    const broker = await countingPort();
    try {
      const err = await rejection(generateAsyncApi(shopModule(broker.url) as never, { connection: 'billing' }));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/no Warren connection 'billing'/);
    } finally {
      await broker.close();
    }
  });

  it('a handler schema with a keyword outside the enforced subset is a ConfigError naming the handler and keyword', async () => {
    @AmqpController({ queue: 'q' })
    class RefController {
      @AmqpEventPattern('thing.done', { schema: { $ref: '#/definitions/thing' } as never })
      done(): void {}
    }
    @Module({ imports: [AmqpModule.forRoot({ url: 'amqp://127.0.0.1:1' })], controllers: [RefController] })
    class RefModule {}
    const err = await rejection(generateAsyncApi(RefModule, { logger: false }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe("handler 'thing.done'.schema");
    expect(err.message).toMatch(/'\$ref'.*outside the subset/);
  });
});
