import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type * as amqplib from 'amqplib';
import {
  AmqpSession,
  Channel,
  type AmqpConnection,
  type Logger,
  type PublishOptions,
  type SessionMessage,
} from '../../lib/amqp';
import { AmqpController, WarrenHeaders, type AmqpServer } from '../../lib/nest';
import { amqpUrl, queueCounts, uniqueName, waitFor } from '../support/broker';
import { BrokerProbe, closeAll, deferred, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-reply-x');
const queue = uniqueName('nest-reply-q');

@AmqpController({
  queue: { name: queue, durable: false },
  exchange: { name: exchange, type: 'topic', durable: false },
})
class ReplyController {
  @MessagePattern('reply.echo')
  echo(@Payload() data: unknown) {
    return { echo: data };
  }

  @MessagePattern('reply.fail')
  fail() {
    throw new RpcException({ status: 'error', message: 'nope', code: 'NOPE' });
  }
}

const silent: Logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The session's two connections. They are private: reached through a cast, only to tell which connection a
 * Channel.publish went out on and to stub `isBlocked` (no memory alarm can be raised in a parallel test).
 */
function connections(session: AmqpSession): { publisher: AmqpConnection; consumer: AmqpConnection } {
  const s = session as unknown as {
    publisher: { current: AmqpConnection | null };
    consumerConn: { current: AmqpConnection | null };
  };
  const publisher = s.publisher.current;
  const consumer = s.consumerConn.current;
  if (!publisher || !consumer) throw new Error('session not connected');
  return { publisher, consumer };
}

/**
 * Which of the session's connections a channel belongs to, as a label: comparing the connection objects themselves
 * with toBe would make a failing assertion pretty-print two huge object graphs.
 */
function connectionOf(session: AmqpSession, channel: Channel): 'publisher' | 'consumer' | 'other' {
  const { publisher, consumer } = connections(session);
  return channel.connection === consumer ? 'consumer' : channel.connection === publisher ? 'publisher' : 'other';
}

/** Pretend the broker blocked a connection (connection.blocked), until the returned function is called. */
function stubBlocked(conn: AmqpConnection): () => void {
  Object.defineProperty(conn, 'isBlocked', { configurable: true, get: () => true });
  return () => void Reflect.deleteProperty(conn, 'isBlocked');
}

/** The queue ends up empty with nothing unacked: the request was acked (the ack leaves after the reply). */
async function expectSettled(name: string): Promise<void> {
  await waitFor(
    async () => {
      const c = await queueCounts(name);
      return c !== undefined && c.ready === 0 && c.unacked === 0;
    },
    10_000,
    `queue ${name} to have 0 ready and 0 unacked`,
    200,
  );
}

interface Reply {
  correlationId: string;
  body: unknown;
  headers: Record<string, unknown>;
}

/** An amqplib caller with its own exclusive reply queue: send() resolves with the reply to that correlation id. */
async function caller(probe: BrokerProbe): Promise<{
  replyQueue: string;
  send(pattern: string, correlationId: string, body: unknown): Promise<Reply>;
  close(): Promise<void>;
}> {
  const ch: amqplib.Channel = await probe.connection.createChannel();
  const { queue: replyQueue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  const waiting = new Map<string, (r: Reply) => void>();
  await ch.consume(
    replyQueue,
    (m) => {
      if (!m) return;
      const correlationId = String(m.properties.correlationId);
      waiting.get(correlationId)?.({
        correlationId,
        body: JSON.parse(m.content.toString()),
        headers: (m.properties.headers ?? {}) as Record<string, unknown>,
      });
    },
    { noAck: true },
  );
  return {
    replyQueue,
    send(pattern, correlationId, body) {
      const got = deferred<Reply>();
      waiting.set(correlationId, got.resolve);
      ch.publish(exchange, pattern, Buffer.from(JSON.stringify(body)), {
        replyTo: replyQueue,
        correlationId,
        contentType: 'application/json',
      });
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        got.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no reply for ${correlationId}`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
    },
    close: () => ch.close().catch(() => undefined),
  };
}

/** Calls of a Channel.prototype.publish spy that published to `routingKey`, with the channel each ran on. */
/** Publishes to `routingKey` seen by the spies (Channel.publish, and publishAwaiting: the session's confirmed path). */
function publishesTo(
  spies: jest.SpyInstance | jest.SpyInstance[],
  routingKey: string,
): Array<{ channel: Channel; order: number }> {
  const out: Array<{ channel: Channel; order: number }> = [];
  for (const spy of Array.isArray(spies) ? spies : [spies]) {
    spy.mock.calls.forEach((args: unknown[], i: number) => {
      if (args[1] === routingKey) {
        out.push({ channel: spy.mock.contexts[i] as Channel, order: spy.mock.invocationCallOrder[i] });
      }
    });
  }
  return out.sort((a, b) => a.order - b.order);
}

describe('AmqpServer replies on the channel that delivered the request', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let server: AmqpServer;

  // Spies on the prototypes see every publish and ack of both of the server's connections (this file's module
  // registry only). They record the channel each call ran on, which tells the consumer connection from the publisher
  // connection without depending on broker statistics.
  let channelPublish: jest.SpyInstance;
  let channelPublishAwaiting: jest.SpyInstance;
  let channelPublishUnconfirmed: jest.SpyInstance;
  let channelAck: jest.SpyInstance;
  let sessionPublish: jest.SpyInstance;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    const started = await startMicroservice({ controllers: [ReplyController] });
    apps.push(started.app);
    server = started.server;
  });

  beforeEach(() => {
    channelPublish = jest.spyOn(Channel.prototype, 'publish');
    channelPublishAwaiting = jest.spyOn(Channel.prototype, 'publishAwaiting');
    channelPublishUnconfirmed = jest.spyOn(Channel.prototype, 'publishUnconfirmed');
    channelAck = jest.spyOn(Channel.prototype, 'ack');
    sessionPublish = jest.spyOn(AmqpSession.prototype, 'publish');
  });

  afterEach(() => jest.restoreAllMocks());

  afterAll(async () => {
    await closeAll(apps);
    await probe?.close();
  });

  it('publishes the reply (values and error envelopes) on the delivering channel, unconfirmed, then acks there', async () => {
    const session = server.unwrap<AmqpSession>();
    const conns = connections(session);
    expect(conns.consumer === conns.publisher).toBe(false); // split connections (the default)
    const c = await caller(probe);
    try {
      const [ok, failed] = await Promise.all([
        c.send('reply.echo', 'call-1', { n: 1 }),
        c.send('reply.fail', 'call-2', {}),
      ]);
      expect(ok.body).toEqual({ echo: { n: 1 } });
      expect(ok.headers[WarrenHeaders.ERROR]).toBeUndefined();
      expect(failed.body).toEqual({ status: 'error', message: 'nope', code: 'NOPE' });
      expect(failed.headers[WarrenHeaders.ERROR]).toBe(true);

      // Both replies went out on a consumer-connection channel not in confirm mode; the session's confirmed
      // publish (publisher connection) was not used for them.
      const replies = publishesTo([channelPublish, channelPublishAwaiting, channelPublishUnconfirmed], c.replyQueue);
      expect(replies).toHaveLength(2);
      for (const r of replies) {
        expect(connectionOf(session, r.channel)).toBe('consumer');
        expect(r.channel.confirmMode).toBe(false);
        // The same channel acked a delivery afterwards: the request, after its reply.
        const acks = channelAck.mock.contexts
          .map((ch: unknown, i: number) => ({ ch, order: channelAck.mock.invocationCallOrder[i] }))
          .filter((a) => a.ch === r.channel && a.order > r.order);
        expect(acks.length).toBeGreaterThan(0);
      }
      expect(sessionPublish.mock.calls.filter((args: unknown[]) => args[1] === c.replyQueue)).toHaveLength(0);
      await expectSettled(queue);
    } finally {
      await c.close();
    }
  });

  it('falls back to the confirmed session publish when the consumer connection is blocked', async () => {
    const session = server.unwrap<AmqpSession>();
    const conns = connections(session);
    const unblock = stubBlocked(conns.consumer);
    const c = await caller(probe);
    try {
      const reply = await c.send('reply.echo', 'blocked-1', 'hi');
      expect(reply.body).toEqual({ echo: 'hi' });

      // The reply went through AmqpSession.publish, on a confirm channel of the publisher connection; nothing was
      // published on the (blocked) consumer connection.
      expect(
        sessionPublish.mock.calls.filter((args: unknown[]) => args[0] === '' && args[1] === c.replyQueue),
      ).toHaveLength(1);
      const replies = publishesTo([channelPublish, channelPublishAwaiting, channelPublishUnconfirmed], c.replyQueue);
      expect(replies).toHaveLength(1);
      expect(connectionOf(session, replies[0].channel)).toBe('publisher');
      expect(replies[0].channel.confirmMode).toBe(true);
      await expectSettled(queue);
    } finally {
      unblock();
      await c.close();
    }
  });

  it('the request is acked only after the reply was published: none left ready or unacked afterwards', async () => {
    const c = await caller(probe);
    try {
      const n = 50;
      const replies = await Promise.all(Array.from({ length: n }, (_, i) => c.send('reply.echo', `many-${i}`, i)));
      expect(replies.map((r) => r.body)).toEqual(Array.from({ length: n }, (_, i) => ({ echo: i })));
      const published = publishesTo([channelPublish, channelPublishAwaiting, channelPublishUnconfirmed], c.replyQueue);
      expect(published).toHaveLength(n);
      const session = server.unwrap<AmqpSession>();
      expect(published.every((p) => connectionOf(session, p.channel) === 'consumer')).toBe(true);
      // Each reply's publish precedes an ack on its own channel.
      const acks = channelAck.mock.contexts.map((ch: unknown, i: number) => ({
        ch,
        order: channelAck.mock.invocationCallOrder[i],
      }));
      for (const p of published) expect(acks.some((a) => a.ch === p.channel && a.order > p.order)).toBe(true);
      await expectSettled(queue);
    } finally {
      await c.close();
    }
  });
});

describe('SessionMessage.publishOnChannel', () => {
  let probe: BrokerProbe;
  let session: AmqpSession;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    session = new AmqpSession({ url: amqpUrl(), name: uniqueName('reply-session'), logger: silent });
    await session.connect();
  });

  afterAll(async () => {
    await session?.close();
    await probe?.close();
  });

  afterEach(() => jest.restoreAllMocks());

  it('publishes on an open, unblocked channel; refuses (publishing nothing) when blocked or closed', async () => {
    const source = probe.queue('pub-src');
    const target = probe.queue('pub-dst');
    await session.queueDeclare(source, { durable: false });
    await session.queueDeclare(target, { durable: false });
    const got = deferred<SessionMessage>();
    const consumer = await session.consume(source, (m) => got.resolve(m));
    await probe.publish('', source, 'request');
    const msg = await got.promise;
    const spy = jest.spyOn(Channel.prototype, 'publishUnconfirmed');
    const options: PublishOptions = { correlationId: 'c1' };

    expect(msg.publishOnChannel('', target, 'first', options)).toBe(true);
    msg.ack();
    const first = await waitFor(() => probe.get(target), 5_000, 'the first message');
    if (!first) throw new Error('unreachable: waitFor returns a message');
    expect(first.content.toString()).toBe('first');
    expect(first.properties.correlationId).toBe('c1');

    const unblock = stubBlocked(connections(session).consumer);
    try {
      expect(msg.publishOnChannel('', target, 'while blocked')).toBe(false);
    } finally {
      unblock();
    }

    await consumer.cancel(); // closes the consumer's channel
    expect(msg.isLive()).toBe(false);
    expect(msg.publishOnChannel('', target, 'after close')).toBe(false);

    expect(spy.mock.calls.map((args: unknown[]) => String(args[2]))).toEqual(['first']);
    expect(await probe.messageCount(target)).toBe(0);
  });

  it('logs a message that cannot be encoded instead of leaving a rejected promise', async () => {
    const errors: string[] = [];
    const logged = deferred();
    const s = new AmqpSession({
      url: amqpUrl(),
      name: uniqueName('reply-session-enc'),
      logger: {
        ...silent,
        error: (m: string) => {
          errors.push(m);
          logged.resolve();
        },
      },
    });
    const source = probe.queue('enc-src');
    try {
      await s.connect();
      await s.queueDeclare(source, { durable: false });
      const got = deferred<SessionMessage>();
      await s.consume(source, (m) => got.resolve(m));
      await probe.publish('', source, 'request');
      const msg = await got.promise;
      // A routing key over 255 bytes cannot be encoded: nothing is sent, the failure is logged.
      expect(msg.publishOnChannel('', 'k'.repeat(300), 'x')).toBe(true);
      await logged.promise;
      expect(errors[0]).toContain('on the delivering channel failed');
      expect(msg.isLive()).toBe(true);
      msg.ack();
    } finally {
      await s.close();
    }
  });
});
