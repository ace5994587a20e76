import { once } from 'node:events';
import { randomBytes, createHash } from 'node:crypto';
import {
  AmqpConnection,
  ConsumerCancelledError,
  NackError,
  UnroutableError,
  type Channel,
  type Message,
  type ReturnedMessage,
} from '../../lib';
import { amqpUrl, brokerAddress, uniqueName } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { collector as collect } from '../support/collector';

jest.setTimeout(60_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Tracks whether a promise has settled (without consuming its rejection). */
function track<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled, promise: p };
}

/** One macrotask turn: lets already-queued I/O callbacks and microtasks run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('publishing and consuming', () => {
  let conn: AmqpConnection;
  let admin: Channel;
  const queues = new Set<string>();

  beforeAll(async () => {
    conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    admin = await conn.channel();
  });

  afterAll(async () => {
    const c = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    for (const q of queues) {
      const ch = await c.channel();
      await ch.queueDelete(q).catch(() => undefined);
      if (ch.isOpen) await ch.close();
    }
    await c.close();
    await conn.close();
  });

  const freshQueue = async (args: Record<string, number | string> = {}): Promise<string> => {
    const q = uniqueName('client-publish-q');
    queues.add(q);
    await admin.queueDeclare(q, { durable: false, arguments: args });
    return q;
  };

  const confirmChannel = async (): Promise<Channel> => {
    const ch = await conn.channel();
    await ch.confirmSelect();
    return ch;
  };

  describe('publisher confirms', () => {
    it('every publish resolves once the broker acks it', async () => {
      const q = await freshQueue();
      const ch = await confirmChannel();
      expect(ch.confirmMode).toBe(true);
      const all = Promise.all(Array.from({ length: 200 }, (_, i) => ch.publish('', q, `m${i}`)));
      expect(ch.unconfirmedCount).toBe(200);
      await all;
      expect(ch.unconfirmedCount).toBe(0);
      expect((await admin.queueDeclare(q, { passive: true })).messageCount).toBe(200);
      await ch.close();
    });

    it('a confirm-mode publish waits for the ack, not just the write', async () => {
      const { host, port } = brokerAddress();
      const proxy = new TcpProxy({ host, port });
      await proxy.start();
      const c = await AmqpConnection.connect({ url: proxy.url('guest', 'guest', 'heartbeat=0'), logger: silentLogger });
      try {
        const q = await freshQueue();
        const ch = await c.channel();
        await ch.confirmSelect();
        proxy.stall();
        const held = once(proxy, 'held');
        const p = track(ch.publish('', q, 'wait for me'));
        await held; // the publish left the client
        await turn();
        expect(p.settled()).toBe(false);
        expect(ch.unconfirmedCount).toBe(1);
        proxy.resume();
        await p.promise;
        expect(ch.unconfirmedCount).toBe(0);
        expect((await admin.get(q, { noAck: true }))?.body.toString()).toBe('wait for me');
      } finally {
        await c.close();
        await proxy.close();
      }
    });

    it('basic.nack (x-overflow reject-publish on a full queue) rejects with NackError', async () => {
      const q = await freshQueue({ 'x-max-length': 1, 'x-overflow': 'reject-publish' });
      const ch = await confirmChannel();
      await ch.publish('', q, 'fits');
      const err = await ch.publish('', q, 'refused').then(
        () => new Error('the second publish was acked'),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(NackError);
      expect((err as NackError).deliveryTag).toBe(2);
      // The channel stays usable; once there is room, publishes are acked again.
      expect((await ch.get(q, { noAck: true }))?.body.toString()).toBe('fits');
      await ch.publish('', q, 'fits again');
      expect(ch.isOpen).toBe(true);
      await ch.close();
    });

    it('mandatory + unroutable rejects with UnroutableError (carrying the body); interleaved routable publishes resolve', async () => {
      const q = await freshQueue();
      const ch = await confirmChannel();
      const returns: ReturnedMessage[] = [];
      ch.on('return', (r) => returns.push(r));
      const nowhere1 = uniqueName('client-publish-nowhere');
      const nowhere2 = uniqueName('client-publish-nowhere');
      const plan: Array<{ rk: string; body: string; routable: boolean }> = [
        { rk: q, body: 'r1', routable: true },
        { rk: nowhere1, body: 'u1', routable: false },
        { rk: q, body: 'r2', routable: true },
        { rk: nowhere2, body: 'u2', routable: false },
        { rk: q, body: 'r3', routable: true },
        { rk: nowhere1, body: 'u3', routable: false },
        { rk: q, body: 'r4', routable: true },
      ];
      const results = await Promise.allSettled(
        plan.map((p) => ch.publish('', p.rk, p.body, { mandatory: true, messageId: p.body })),
      );
      results.forEach((r, i) => {
        const p = plan[i];
        if (p.routable) {
          expect(r.status).toBe('fulfilled');
          return;
        }
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as UnroutableError;
        expect(err).toBeInstanceOf(UnroutableError);
        expect(err.replyCode).toBe(312);
        expect(err.replyText).toBe('NO_ROUTE');
        expect(err.returned.routingKey).toBe(p.rk);
        expect(err.returned.exchange).toBe('');
        expect(err.returned.body.toString()).toBe(p.body);
        expect(err.returned.properties.messageId).toBe(p.body);
      });
      expect(returns.map((r) => r.body.toString())).toEqual(['u1', 'u2', 'u3']);
      expect((await admin.queueDeclare(q, { passive: true })).messageCount).toBe(4);
      // Without mandatory an unroutable publish is acked (and dropped).
      await ch.publish('', nowhere1, 'dropped');
      expect(returns).toHaveLength(3);
      await ch.close();
    });

    it('without confirm mode, a mandatory unroutable message only emits "return"', async () => {
      const ch = await conn.channel();
      const returned = once(ch, 'return') as Promise<[ReturnedMessage]>;
      const rk = uniqueName('client-publish-nowhere');
      await ch.publish('', rk, 'back to sender', { mandatory: true });
      const [r] = await returned;
      expect(r.replyCode).toBe(312);
      expect(r.routingKey).toBe(rk);
      expect(r.body.toString()).toBe('back to sender');
      await ch.close();
    });
  });

  it('without confirm mode, publish resolves once written (even while the broker hears nothing)', async () => {
    const { host, port } = brokerAddress();
    const proxy = new TcpProxy({ host, port });
    await proxy.start();
    const c = await AmqpConnection.connect({ url: proxy.url('guest', 'guest', 'heartbeat=0'), logger: silentLogger });
    try {
      const q = await freshQueue();
      const ch = await c.channel();
      proxy.stall();
      const held = once(proxy, 'held');
      await ch.publish('', q, 'written');
      expect(ch.confirmMode).toBe(false);
      await held;
      proxy.resume();
      // basic.get on the same channel reaches the queue after the publish (a passive declare would not: RabbitMQ
      // answers queue stats with priority, ahead of deliveries still in the queue's mailbox).
      const got = await ch.get(q, { noAck: true });
      expect(got?.body.toString()).toBe('written');
      expect(got?.fields.messageCount).toBe(0);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it('a 10 MiB message round-trips intact (many body frames each way)', async () => {
    const q = await freshQueue();
    const body = randomBytes(10 * 1024 * 1024);
    const digest = createHash('sha256').update(body).digest('hex');
    for (const url of [amqpUrl(), `${amqpUrl()}?frame_max=8192`]) {
      const c = await AmqpConnection.connect({ url, logger: silentLogger });
      try {
        const ch = await c.channel();
        await ch.confirmSelect();
        await ch.publish('', q, body, { contentType: 'application/octet-stream' });
        const got = collect<Message>();
        await ch.consume(q, got.handler, { noAck: true });
        await got.atLeast(1);
        const m = got.messages[0];
        expect(m.body.length).toBe(body.length);
        expect(createHash('sha256').update(m.body).digest('hex')).toBe(digest);
        expect(m.body.equals(body)).toBe(true);
        expect(m.properties.contentType).toBe('application/octet-stream');
      } finally {
        await c.close();
      }
    }
  });

  it('5 channels × 1 000 concurrent publishes: all 5 000 delivered, order kept per channel', async () => {
    const q = await freshQueue();
    const consumerConn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    try {
      const cch = await consumerConn.channel();
      const got = collect<Message>();
      await cch.consume(q, got.handler, { noAck: true });
      const publishers = await Promise.all(Array.from({ length: 5 }, () => conn.channel()));
      // Two in confirm mode, three not: both paths interleave on one socket.
      await publishers[0].confirmSelect();
      await publishers[1].confirmSelect();
      const body = Buffer.alloc(100, 1);
      await Promise.all(
        publishers.flatMap((ch) =>
          Array.from({ length: 1000 }, (_, seq) => ch.publish('', q, body, { headers: { ch: ch.id, seq } })),
        ),
      );
      await got.atLeast(5000);
      expect(got.messages).toHaveLength(5000);
      const lastSeq = new Map<number, number>();
      for (const m of got.messages) {
        const h = m.properties.headers as { ch: number; seq: number };
        const prev = lastSeq.get(h.ch) ?? -1;
        expect(h.seq).toBe(prev + 1);
        lastSeq.set(h.ch, h.seq);
      }
      expect([...lastSeq.keys()].sort((a, b) => a - b)).toEqual(publishers.map((p) => p.id).sort((a, b) => a - b));
      expect([...lastSeq.values()]).toEqual([999, 999, 999, 999, 999]);
      await Promise.all(publishers.map((p) => p.close()));
    } finally {
      await consumerConn.close();
    }
  });

  describe('consumers', () => {
    it('a handler that throws or rejects is reported via "consumerError"; deliveries go on', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      const errors: Array<{ err: unknown; body: string }> = [];
      ch.on('consumerError', (err, m) => errors.push({ err, body: m.body.toString() }));
      const handled = collect<Message>();
      await ch.consume(
        q,
        async (m) => {
          handled.handler(m);
          const body = m.body.toString();
          if (body === 'throw') throw new Error('sync boom');
          if (body === 'reject') {
            await Promise.resolve();
            throw new Error('async boom');
          }
        },
        { noAck: true },
      );
      // A plain (non-async) throwing handler too.
      const q2 = await freshQueue();
      await ch.consume(
        q2,
        () => {
          throw new Error('plain boom');
        },
        { noAck: true },
      );
      const errorsSeen = new Promise<void>((resolve) => {
        ch.on('consumerError', () => {
          if (errors.length === 3) resolve();
        });
      });
      for (const body of ['throw', 'reject', 'fine']) await admin.publish('', q, body);
      await admin.publish('', q2, 'plain');
      await handled.atLeast(3);
      await errorsSeen;
      expect(handled.messages.map((m) => m.body.toString())).toEqual(['throw', 'reject', 'fine']);
      expect(errors.map((e) => [e.body, (e.err as Error).message]).sort()).toEqual([
        ['plain', 'plain boom'],
        ['reject', 'async boom'],
        ['throw', 'sync boom'],
      ]);
      expect(ch.isOpen).toBe(true);
      await admin.publish('', q, 'after');
      await handled.atLeast(4);
      expect(handled.messages[3].body.toString()).toBe('after');
      await ch.close();
    });

    it('without a "consumerError" listener, a failing handler is logged and the channel survives', async () => {
      const logged: string[] = [];
      const c = await AmqpConnection.connect({
        url: amqpUrl(),
        logger: { ...silentLogger, error: (msg: string) => logged.push(msg) },
      });
      try {
        const q = await freshQueue();
        const ch = await c.channel();
        const handled = collect<Message>();
        await ch.consume(
          q,
          (m) => {
            handled.handler(m);
            if (m.body.toString() === 'bad') throw new Error('logged boom');
          },
          { noAck: true },
        );
        await admin.publish('', q, 'bad');
        await admin.publish('', q, 'good');
        await handled.atLeast(2);
        expect(logged.some((l) => l.includes('logged boom'))).toBe(true);
        expect(ch.isOpen).toBe(true);
      } finally {
        await c.close();
      }
    });

    it('async iterator: receives messages; break cancels the consumer', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      await ch.confirmSelect();
      for (const b of ['a', 'b', 'c']) await ch.publish('', q, b);
      const bodies: string[] = [];
      let countInside = -1;
      for await (const m of ch.consume(q, { noAck: false })) {
        bodies.push(m.body.toString());
        ch.ack(m);
        if (bodies.length === 1) countInside = (await admin.queueDeclare(q, { passive: true })).consumerCount;
        if (bodies.length === 3) break;
      }
      expect(bodies).toEqual(['a', 'b', 'c']);
      expect(countInside).toBe(1);
      expect((await admin.queueDeclare(q, { passive: true })).consumerCount).toBe(0);
      // Later messages stay in the queue.
      await ch.publish('', q, 'd');
      expect((await admin.queueDeclare(q, { passive: true })).messageCount).toBe(1);
      await ch.close();
    });

    it('async iterator: messages published while iterating arrive in order', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      const stream = ch.consume(q, { noAck: true });
      await stream.consumer();
      const publishing = (async () => {
        for (let i = 0; i < 50; i++) await admin.publish('', q, String(i));
      })();
      const seen: number[] = [];
      for await (const m of stream) {
        seen.push(Number(m.body.toString()));
        if (seen.length === 50) break;
      }
      await publishing;
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect((await admin.queueDeclare(q, { passive: true })).consumerCount).toBe(0);
      await ch.close();
    });

    it('broker-side cancel (queue deleted): onCancel and "cancel" fire, the channel stays open', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      let resolveCancel: (tag: string) => void = () => undefined;
      const onCancel = new Promise<string>((resolve) => (resolveCancel = resolve));
      const consumer = await ch.consume(q, () => undefined, { onCancel: (tag) => resolveCancel(tag) });
      const cancelEvent = once(ch, 'cancel') as Promise<[string]>;
      await admin.queueDelete(q);
      expect(await onCancel).toBe(consumer.consumerTag);
      const [eventTag] = await cancelEvent;
      expect(eventTag).toBe(consumer.consumerTag);
      expect(ch.isOpen).toBe(true);
      expect((await ch.queueDeclare('', { exclusive: true })).queue).toMatch(/^amq\.gen-/);
      // The cancelled consumer is gone: cancelling it again is a no-op for the broker.
      await ch.cancel(consumer.consumerTag);
      await ch.close();
    });

    it('broker-side cancel: the async iterator throws ConsumerCancelledError', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      const stream = ch.consume(q, { noAck: true });
      const consumer = await stream.consumer();
      await admin.publish('', q, 'one');
      let caught: unknown;
      const bodies: string[] = [];
      try {
        for await (const m of stream) {
          bodies.push(m.body.toString());
          await admin.queueDelete(q);
        }
      } catch (err) {
        caught = err;
      }
      expect(bodies).toEqual(['one']);
      expect(caught).toBeInstanceOf(ConsumerCancelledError);
      expect((caught as ConsumerCancelledError).consumerTag).toBe(consumer.consumerTag);
      expect(ch.isOpen).toBe(true);
      await ch.close();
    });

    it('broker-side cancel before any delivery: the error still names the consumer', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      const stream = ch.consume(q, { noAck: true });
      const consumer = await stream.consumer();
      await admin.queueDelete(q);
      const it = stream[Symbol.asyncIterator]();
      const err = await it.next().then(
        () => new Error('the iterator yielded'),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(ConsumerCancelledError);
      expect((err as ConsumerCancelledError).consumerTag).toBe(consumer.consumerTag);
      expect(err.message).toContain(consumer.consumerTag);
      await ch.close();
    });

    it('headers are decoded lazily, on first read', async () => {
      const q = await freshQueue();
      const ch = await conn.channel();
      await admin.publish('', q, 'with headers', { headers: { n: 42, nested: { s: 'x' }, list: [1, 'two'] } });
      await admin.publish('', q, 'without headers', { contentType: 'text/plain' });
      const got = collect<Message>();
      await ch.consume(q, got.handler, { noAck: true });
      await got.atLeast(2);
      const [withH, withoutH] = got.messages;
      expect(withH.properties.headersDecoded).toBe(false);
      expect(withH.properties.headers).toEqual({ n: 42, nested: { s: 'x' }, list: [1, 'two'] });
      expect(withH.properties.headersDecoded).toBe(true);
      expect(withoutH.properties.headersDecoded).toBe(true);
      expect(withoutH.properties.headers).toBeUndefined();
      expect(withoutH.properties.contentType).toBe('text/plain');
      await ch.close();
    });
  });
});
