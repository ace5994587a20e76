import { once } from 'node:events';
import {
  AmqpConnection,
  ChannelError,
  ClosedError,
  ConnectionError,
  TimeoutError,
  UnroutableError,
  type AmqpError,
  type Channel,
  type Message,
} from '../../lib';
import { amqpUrl, brokerAddress, settledQueueCounts, uniqueName } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { collector as collect } from '../support/collector';

jest.setTimeout(30_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err as Error,
  );
}

describe('Channel operations against the broker', () => {
  let conn: AmqpConnection;
  /** A confirm-mode channel used to fill queues and probe routing. */
  let pub: Channel;
  const queues = new Set<string>();
  const exchanges = new Set<string>();

  beforeAll(async () => {
    conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    pub = await conn.channel();
    await pub.confirmSelect();
  });

  afterAll(async () => {
    if (!conn.isOpen) conn = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    for (const q of queues) {
      const ch = await conn.channel();
      await ch.queueDelete(q).catch(() => undefined);
      if (ch.isOpen) await ch.close();
    }
    for (const ex of exchanges) {
      const ch = await conn.channel();
      await ch.exchangeDelete(ex).catch(() => undefined);
      if (ch.isOpen) await ch.close();
    }
    await conn.close();
  });

  const qName = (prefix = 'client-channel-q'): string => {
    const name = uniqueName(prefix);
    queues.add(name);
    return name;
  };
  const exName = (prefix = 'client-channel-ex'): string => {
    const name = uniqueName(prefix);
    exchanges.add(name);
    return name;
  };

  /** A fresh, non-durable queue. */
  const freshQueue = async (args: Record<string, number | string> = {}): Promise<string> => {
    const q = qName();
    await pub.queueDeclare(q, { durable: false, arguments: args });
    return q;
  };

  /** Publishes m1..mn (confirmed, so they are enqueued when this resolves). */
  const fill = async (queue: string, n: number): Promise<void> => {
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publish('', queue, `m${i + 1}`)));
  };

  /** Whether a mandatory, confirmed publish reaches a queue. */
  const routes = async (exchange: string, routingKey: string, headers?: Record<string, number>): Promise<boolean> => {
    try {
      await pub.publish(exchange, routingKey, 'probe', { mandatory: true, headers });
      return true;
    } catch (err) {
      if (err instanceof UnroutableError) return false;
      throw err;
    }
  };

  /** Whether an exchange or queue exists (passive declare on a throwaway channel). */
  const exists = async (kind: 'exchange' | 'queue', name: string): Promise<boolean> => {
    const ch = await conn.channel();
    try {
      if (kind === 'exchange') await ch.exchangeDeclare(name, 'direct', { passive: true });
      else await ch.queueDeclare(name, { passive: true });
      await ch.close();
      return true;
    } catch (err) {
      if (err instanceof ChannelError && err.replyCode === 404) return false;
      throw err;
    }
  };

  const withChannel = async <T>(fn: (ch: Channel) => Promise<T>): Promise<T> => {
    const ch = await conn.channel();
    try {
      return await fn(ch);
    } finally {
      if (ch.isOpen) await ch.close();
    }
  };

  describe('exchanges', () => {
    it('declares every exchange type; passive declare checks existence; delete removes it', async () => {
      await withChannel(async (ch) => {
        for (const type of ['direct', 'fanout', 'topic', 'headers']) {
          const ex = exName(`client-channel-${type}`);
          await ch.exchangeDeclare(ex, type, { durable: false, autoDelete: false });
          await ch.exchangeDeclare(ex, type, { passive: true });
          // A plain redeclare with the same settings is fine.
          await ch.exchangeDeclare(ex, type, { durable: false });
          expect(await exists('exchange', ex)).toBe(true);
          await ch.exchangeDelete(ex);
          expect(await exists('exchange', ex)).toBe(false);
        }
      });
    });

    it('exchange-to-exchange binding routes a message through; unbind stops it', async () => {
      const source = exName('client-channel-e2e-src');
      const dest = exName('client-channel-e2e-dst');
      const q = qName();
      await withChannel(async (ch) => {
        await ch.exchangeDeclare(source, 'topic', { durable: false });
        await ch.exchangeDeclare(dest, 'fanout', { durable: false });
        await ch.queueDeclare(q, { durable: false });
        await ch.queueBind(q, dest);
        expect(await routes(source, 'a.b')).toBe(false);

        await ch.exchangeBind(dest, source, 'a.*');
        await pub.publish(source, 'a.b', 'through', { mandatory: true });
        const got = await ch.get(q, { noAck: true });
        expect(got?.body.toString()).toBe('through');
        expect(got?.fields.exchange).toBe(source);
        expect(got?.fields.routingKey).toBe('a.b');
        expect(await routes(source, 'x.y')).toBe(false);

        await ch.exchangeUnbind(dest, source, 'a.*');
        expect(await routes(source, 'a.b')).toBe(false);
        await ch.queuePurge(q);
      });
    });

    it('exchangeDelete ifUnused refuses an exchange with bindings (406)', async () => {
      const ex = exName();
      const q = qName();
      const ch = await conn.channel();
      await ch.exchangeDeclare(ex, 'direct', { durable: false });
      await ch.queueDeclare(q, { durable: false });
      await ch.queueBind(q, ex, 'k');
      const err = await rejection(ch.exchangeDelete(ex, { ifUnused: true }));
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(406);
      expect((err as ChannelError).failedMethod?.methodName).toBe('exchange.delete');
      expect(await exists('exchange', ex)).toBe(true);
    });
  });

  describe('queues', () => {
    it('declares named, server-named and passive; passive reports message and consumer counts', async () => {
      await withChannel(async (ch) => {
        const q = qName();
        expect(await ch.queueDeclare(q, { durable: false })).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
        await fill(q, 2);
        const consumer = await ch.consume(q, () => undefined, { noAck: false, consumerTag: uniqueName('ctag') });
        const passive = await pub.queueDeclare(q, { passive: true });
        expect(passive.queue).toBe(q);
        expect(passive.consumerCount).toBe(1);
        await consumer.cancel();
        await ch.recover(true);
        // (basic.get, not a passive declare: RabbitMQ answers queue stats ahead of the requeue in its mailbox.)
        const back = await ch.get(q, { noAck: true });
        expect(back?.fields.redelivered).toBe(true);
        expect(back?.fields.messageCount).toBe(1);
        expect((await ch.queueDeclare(q, { passive: true })).consumerCount).toBe(0);

        const generated = await ch.queueDeclare('', { exclusive: true });
        expect(generated.queue).toMatch(/^amq\.gen-/);
        expect(generated.messageCount).toBe(0);
        // Exclusive: another connection may not use it.
        const other = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
        try {
          const och = await other.channel();
          const err = await rejection(och.queueDeclare(generated.queue, { passive: true }));
          expect(err).toBeInstanceOf(ChannelError);
          expect((err as ChannelError).replyCode).toBe(405);
        } finally {
          await other.close();
        }
      });
    });

    it('binds and unbinds queues (with binding arguments on a headers exchange)', async () => {
      const direct = exName();
      const headers = exName();
      const q = qName();
      await withChannel(async (ch) => {
        await ch.exchangeDeclare(direct, 'direct', { durable: false });
        await ch.exchangeDeclare(headers, 'headers', { durable: false });
        await ch.queueDeclare(q, { durable: false });
        expect(await routes(direct, 'k1')).toBe(false);
        await ch.queueBind(q, direct, 'k1');
        expect(await routes(direct, 'k1')).toBe(true);
        expect(await routes(direct, 'k2')).toBe(false);
        await ch.queueUnbind(q, direct, 'k1');
        expect(await routes(direct, 'k1')).toBe(false);

        await ch.queueBind(q, headers, '', { arguments: { 'x-match': 'all', colour: 'red' } });
        expect(await routes(headers, '', undefined)).toBe(false);
        await expect(pub.publish(headers, '', 'h', { mandatory: true, headers: { colour: 'red' } })).resolves.toBe(
          undefined,
        );
        await ch.queueUnbind(q, headers, '', { arguments: { 'x-match': 'all', colour: 'red' } });
        await expect(
          pub.publish(headers, '', 'h', { mandatory: true, headers: { colour: 'red' } }),
        ).rejects.toBeInstanceOf(UnroutableError);
        expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(2);
      });
    });

    it('purges and reports how many messages went', async () => {
      const q = await freshQueue();
      await fill(q, 3);
      await withChannel(async (ch) => {
        expect(await ch.queuePurge(q)).toEqual({ messageCount: 3 });
        expect(await ch.get(q)).toBeNull();
        expect(await ch.queuePurge(q)).toEqual({ messageCount: 0 });
      });
    });

    it('deletes a queue (reporting its messages); ifEmpty and ifUnused refuse with 406', async () => {
      const q = await freshQueue();
      await fill(q, 2);
      const ch = await conn.channel();
      const err = await rejection(ch.queueDelete(q, { ifEmpty: true }));
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(406);
      expect((err as ChannelError).failedMethod?.methodName).toBe('queue.delete');

      await withChannel(async (c2) => {
        await c2.consume(q, () => undefined, { noAck: false });
        const unused = await rejection((await conn.channel()).queueDelete(q, { ifUnused: true }));
        expect((unused as ChannelError).replyCode).toBe(406);
      });
      expect(await exists('queue', q)).toBe(true);
      // The two deliveries c2 held go back to the queue as its channel closes: delete once the broker has them ready.
      expect(await settledQueueCounts(q)).toMatchObject({ ready: 2 });
      await withChannel(async (c3) => {
        expect(await c3.queueDelete(q)).toEqual({ messageCount: 2 });
      });
      expect(await exists('queue', q)).toBe(false);
    });
  });

  describe('basic', () => {
    it('qos limits unacknowledged deliveries per consumer', async () => {
      const q = await freshQueue();
      await fill(q, 5);
      await withChannel(async (ch) => {
        await ch.qos(2);
        const c = collect<Message>();
        await ch.consume(q, c.handler);
        await c.atLeast(2);
        // The broker holds back the other 3 until we ack.
        expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(3);
        expect(c.messages).toHaveLength(2);
        ch.ack(c.messages[0]);
        await c.atLeast(3);
        expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(2);
        expect(c.messages.map((m) => m.body.toString())).toEqual(['m1', 'm2', 'm3']);
        ch.ack(c.messages[2], true);
        await c.atLeast(5);
        ch.ack(c.messages[4], true);
      });
    });

    it('qos rejects an out-of-range prefetch without touching the channel', async () => {
      await withChannel(async (ch) => {
        await expect(ch.qos(70000)).rejects.toThrow(/prefetchCount/);
        await expect(ch.qos(-1)).rejects.toThrow(/prefetchCount/);
        await ch.qos(10, true);
        expect(ch.isOpen).toBe(true);
      });
    });

    it('get: null on an empty queue; a message with fields, properties and messageCount', async () => {
      const q = await freshQueue();
      await withChannel(async (ch) => {
        expect(await ch.get(q)).toBeNull();
        const ts = new Date(Math.floor(Date.now() / 1000) * 1000);
        await pub.publish('', q, 'first', {
          contentType: 'text/plain',
          messageId: 'id-1',
          correlationId: 'corr-1',
          timestamp: ts,
          persistent: true,
          headers: { a: 1, s: 'x' },
        });
        await fill(q, 2);
        const m = await ch.get(q);
        expect(m).not.toBeNull();
        const msg = m as Message;
        expect(msg.body.toString()).toBe('first');
        expect(msg.fields.messageCount).toBe(2);
        expect(msg.fields.redelivered).toBe(false);
        expect(msg.fields.exchange).toBe('');
        expect(msg.fields.routingKey).toBe(q);
        expect(msg.fields.deliveryTag).toBe(1);
        expect(msg.properties.contentType).toBe('text/plain');
        expect(msg.properties.messageId).toBe('id-1');
        expect(msg.properties.correlationId).toBe('corr-1');
        expect(msg.properties.deliveryMode).toBe(2);
        expect(msg.properties.timestamp?.getTime()).toBe(ts.getTime());
        expect(msg.properties.headers).toEqual({ a: 1, s: 'x' });
        const m2 = await ch.get(q, { noAck: true });
        expect(m2?.fields.messageCount).toBe(1);
        expect(m2?.fields.deliveryTag).toBe(2);
        ch.ack(msg);
      });
    });

    it('ack with multiple acknowledges everything up to the tag', async () => {
      const q = await freshQueue();
      await fill(q, 3);
      await withChannel(async (ch) => {
        const [m1, m2, m3] = [await ch.get(q), await ch.get(q), await ch.get(q)];
        expect([m1, m2, m3].map((m) => m?.body.toString())).toEqual(['m1', 'm2', 'm3']);
        ch.ack(m2 as Message, true);
        // Only m3 is still unacked: recover puts just it back.
        await ch.recover(true);
        const again = await ch.get(q);
        expect(again?.body.toString()).toBe('m3');
        expect(again?.fields.redelivered).toBe(true);
        expect(await ch.get(q)).toBeNull();
        ch.ack(again as Message);
        // A single ack by tag number.
        await fill(q, 1);
        const one = await ch.get(q);
        ch.ack((one as Message).fields.deliveryTag);
        await ch.recover(true);
        expect(await ch.get(q)).toBeNull();
      });
    });

    it('nack with multiple and requeue puts them back (redelivered), in order', async () => {
      const q = await freshQueue();
      await fill(q, 3);
      await withChannel(async (ch) => {
        const [, m2, m3] = [await ch.get(q), await ch.get(q), await ch.get(q)];
        ch.nack(m2 as Message, true, true);
        const a = await ch.get(q);
        const b = await ch.get(q);
        expect([a?.body.toString(), b?.body.toString()]).toEqual(['m1', 'm2']);
        expect(a?.fields.redelivered).toBe(true);
        expect(b?.fields.redelivered).toBe(true);
        expect(b?.fields.messageCount).toBe(0);
        expect(await ch.get(q)).toBeNull();
        // nack defaults to requeue; multiple=false touches just one.
        ch.nack(m3 as Message);
        const c = await ch.get(q);
        expect(c?.body.toString()).toBe('m3');
        expect(c?.fields.redelivered).toBe(true);
        // nack without requeue drops everything up to the tag.
        ch.nack(c as Message, true, false);
        await ch.recover(true);
        expect(await ch.get(q)).toBeNull();
        expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(0);
      });
    });

    it('nack without requeue drops a single message', async () => {
      const q = await freshQueue();
      await fill(q, 2);
      await withChannel(async (ch) => {
        const m1 = await ch.get(q);
        const m2 = await ch.get(q);
        ch.nack(m1 as Message, false, false);
        await ch.recover(true);
        const back = await ch.get(q);
        expect(back?.body.toString()).toBe('m2');
        expect(back?.fields.redelivered).toBe(true);
        expect(await ch.get(q)).toBeNull();
        expect(m2?.fields.redelivered).toBe(false);
        ch.ack(back as Message);
      });
    });

    it('reject requeues (redelivered) or drops', async () => {
      const q = await freshQueue();
      await fill(q, 1);
      await withChannel(async (ch) => {
        const m = await ch.get(q);
        ch.reject(m as Message, true);
        const again = await ch.get(q);
        expect(again?.body.toString()).toBe('m1');
        expect(again?.fields.redelivered).toBe(true);
        expect(again?.fields.messageCount).toBe(0);
        // Default requeue is true, by tag number.
        ch.reject((again as Message).fields.deliveryTag);
        const third = await ch.get(q);
        expect(third?.body.toString()).toBe('m1');
        ch.reject(third as Message, false);
        await ch.recover(true);
        expect(await ch.get(q)).toBeNull();
      });
    });

    it('recover redelivers unacked messages (to a consumer too)', async () => {
      const q = await freshQueue();
      await fill(q, 2);
      await withChannel(async (ch) => {
        const c = collect<Message>();
        await ch.consume(q, c.handler);
        await c.atLeast(2);
        expect(c.messages.every((m) => !m.fields.redelivered)).toBe(true);
        await ch.recover(true);
        await c.atLeast(4);
        expect(c.messages.slice(2).map((m) => [m.body.toString(), m.fields.redelivered])).toEqual([
          ['m1', true],
          ['m2', true],
        ]);
        ch.ack(c.messages[3], true);
      });
    });

    it('consume and cancel: consumer count on the broker follows', async () => {
      const q = await freshQueue();
      await withChannel(async (ch) => {
        const c = collect<Message>();
        const consumer = await ch.consume(q, c.handler, { noAck: true });
        expect(consumer.consumerTag).toMatch(/^amq\.ctag-/);
        expect(consumer.queue).toBe(q);
        expect((await pub.queueDeclare(q, { passive: true })).consumerCount).toBe(1);
        await fill(q, 1);
        await c.atLeast(1);
        expect(c.messages[0].fields.consumerTag).toBe(consumer.consumerTag);
        await ch.cancel(consumer.consumerTag);
        expect((await pub.queueDeclare(q, { passive: true })).consumerCount).toBe(0);
        await fill(q, 1);
        expect((await ch.get(q, { noAck: true }))?.body.toString()).toBe('m1');
        expect(c.messages).toHaveLength(1);
      });
    });
  });

  describe('transactions', () => {
    it('a published message is visible only after commit; rollback discards', async () => {
      const q = await freshQueue();
      await withChannel(async (tx) => {
        await tx.txSelect();
        await tx.publish('', q, 'A');
        // A round trip on the tx channel: the broker has the publish by now.
        await tx.queueDeclare(q, { passive: true });
        expect(await pub.get(q)).toBeNull();
        await tx.txRollback();
        expect(await pub.get(q)).toBeNull();

        await tx.publish('', q, 'B');
        await tx.publish('', q, 'C');
        await tx.queueDeclare(q, { passive: true });
        expect((await pub.queueDeclare(q, { passive: true })).messageCount).toBe(0);
        await tx.txCommit();
        expect((await pub.get(q, { noAck: true }))?.body.toString()).toBe('B');
        expect((await pub.get(q, { noAck: true }))?.body.toString()).toBe('C');
        expect(await pub.get(q)).toBeNull();
      });
    });

    it('acks are transactional too', async () => {
      const q = await freshQueue();
      await fill(q, 1);
      await withChannel(async (tx) => {
        await tx.txSelect();
        const m = await tx.get(q);
        tx.ack(m as Message);
        await tx.txRollback();
        // The ack was rolled back: the message is still unacked, recover returns it.
        await tx.recover(true);
        const again = await tx.get(q);
        expect(again?.body.toString()).toBe('m1');
        tx.ack(again as Message);
        await tx.txCommit();
        await tx.recover(true);
        expect(await tx.get(q)).toBeNull();
      });
    });

    it('commit without select is a 406 channel error', async () => {
      const ch = await conn.channel();
      const err = await rejection(ch.txCommit());
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(406);
      expect((err as ChannelError).failedMethod?.methodName).toBe('tx.commit');
    });
  });

  describe('flow', () => {
    it('flow(true) resolves with the broker answer', async () => {
      await withChannel(async (ch) => {
        expect(await ch.flow(true)).toBe(true);
      });
    });

    it('flow(false) is refused by RabbitMQ with a 540 connection error', async () => {
      const other = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
      const ch = await other.channel();
      const closed = once(other, 'close') as Promise<[AmqpError | undefined]>;
      const err = await rejection(ch.flow(false));
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).replyCode).toBe(540);
      expect((err as ConnectionError).failedMethod?.methodName).toBe('channel.flow');
      const [connErr] = await closed;
      expect(connErr).toBe(err);
      expect(other.isOpen).toBe(false);
    });
  });

  describe('noWait variants', () => {
    it('declare, bind, purge, unbind and delete without waiting; a later sync call sees their effect', async () => {
      const ex = exName();
      const src = exName();
      const q = qName();
      await withChannel(async (ch) => {
        const sent: Array<Promise<unknown>> = [
          ch.exchangeDeclare(ex, 'direct', { durable: false, noWait: true }),
          ch.exchangeDeclare(src, 'fanout', { durable: false, noWait: true }),
          ch.queueDeclare(q, { durable: false, noWait: true }),
          ch.queueBind(q, ex, 'k', { noWait: true }),
          ch.exchangeBind(ex, src, '', { noWait: true }),
        ];
        // They settle without a reply: nothing is queued behind them.
        expect(await sent[2]).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
        await Promise.all(sent);
        // A synchronous call on the same channel is answered after all of them.
        await ch.queueDeclare(q, { passive: true });
        expect(await routes(ex, 'k')).toBe(true);
        expect(await routes(src, 'k')).toBe(true);
        expect(await ch.queuePurge(q, { noWait: true })).toEqual({ messageCount: 0 });
        expect((await ch.queueDeclare(q, { passive: true })).messageCount).toBe(0);

        await ch.exchangeUnbind(ex, src, '', { noWait: true });
        await ch.exchangeDeclare(ex, 'direct', { passive: true });
        expect(await routes(src, 'k')).toBe(false);

        await fill(q, 2);
        expect(await ch.queueDelete(q, { noWait: true })).toEqual({ messageCount: 0 });
        await ch.exchangeDelete(ex, { noWait: true });
        await ch.exchangeDelete(src, { noWait: true });
        await ch.queueDeclare('', { exclusive: true });
      });
      expect(await exists('queue', q)).toBe(false);
      expect(await exists('exchange', ex)).toBe(false);
      expect(await exists('exchange', src)).toBe(false);
    });

    it('consume, cancel and confirm.select without waiting', async () => {
      const q = await freshQueue();
      await withChannel(async (ch) => {
        const c = collect<Message>();
        const tag = uniqueName('nowait-ctag');
        const consumer = await ch.consume(q, c.handler, { noAck: true, noWait: true, consumerTag: tag });
        expect(consumer.consumerTag).toBe(tag);
        await fill(q, 1);
        await c.atLeast(1);
        expect(c.messages[0].fields.consumerTag).toBe(tag);
        await ch.cancel(tag, { noWait: true });
        expect((await ch.queueDeclare(q, { passive: true })).consumerCount).toBe(0);

        await ch.confirmSelect({ noWait: true });
        expect(ch.confirmMode).toBe(true);
        await ch.publish('', q, 'confirmed');
        expect(ch.unconfirmedCount).toBe(0);
        expect((await ch.get(q, { noAck: true }))?.body.toString()).toBe('confirmed');
      });
    });

    it('a noWait consume needs its own consumerTag', async () => {
      await withChannel(async (ch) => {
        await expect(ch.consume('whatever', () => undefined, { noWait: true })).rejects.toThrow(/consumerTag/);
      });
    });

    it('a failing noWait declare closes the channel asynchronously with the ChannelError', async () => {
      const ch = await conn.channel();
      const closed = once(ch, 'close') as Promise<[AmqpError | undefined]>;
      const missing = uniqueName('client-channel-missing');
      await ch.queueDeclare(missing, { passive: true, noWait: true });
      const [err] = await closed;
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(404);
      expect((err as ChannelError).failedMethod?.methodName).toBe('queue.declare');
      expect(ch.isOpen).toBe(false);
    });
  });

  describe('channel errors', () => {
    it('404 on a passive declare rejects with ChannelError; queued and later calls fail; a sibling keeps working', async () => {
      const ch = await conn.channel();
      const sibling = await conn.channel();
      const closed = once(ch, 'close') as Promise<[AmqpError | undefined]>;
      const missing = uniqueName('client-channel-missing');
      const first = ch.queueDeclare(missing, { passive: true });
      const queued = ch.queueDeclare(qName(), { durable: false });
      const err = await rejection(first);
      expect(err).toBeInstanceOf(ChannelError);
      const ce = err as ChannelError;
      expect(ce.replyCode).toBe(404);
      expect(ce.replyText).toMatch(/^NOT_FOUND/);
      expect(ce.replyText).toContain(missing);
      expect(ce.failedMethod).toEqual({ classId: 50, methodId: 10, methodName: 'queue.declare' });
      expect(await rejection(queued)).toBe(err);
      const [closeErr] = await closed;
      expect(closeErr).toBe(err);
      expect(ch.isOpen).toBe(false);
      expect(ch.closeReason).toBe(err);

      await expect(ch.queueDeclare('', { exclusive: true })).rejects.toBe(err);
      await expect(ch.publish('', 'x', 'y')).rejects.toBe(err);
      await expect(ch.get('x')).rejects.toBe(err);
      expect(() => ch.ack(1)).toThrow(err);
      await ch.close(); // no-op on a closed channel

      const q = await sibling.queueDeclare('', { exclusive: true });
      await sibling.confirmSelect();
      await sibling.publish('', q.queue, 'still fine');
      expect((await sibling.get(q.queue, { noAck: true }))?.body.toString()).toBe('still fine');
      expect(conn.isOpen).toBe(true);
      await sibling.close();
    });

    it('406 on a redeclare with different arguments; the failed method is named', async () => {
      const q = await freshQueue({ 'x-max-length': 1 });
      const ch = await conn.channel();
      const err = await rejection(ch.queueDeclare(q, { durable: false, arguments: { 'x-max-length': 2 } }));
      expect(err).toBeInstanceOf(ChannelError);
      const ce = err as ChannelError;
      expect(ce.replyCode).toBe(406);
      expect(ce.replyText).toMatch(/^PRECONDITION_FAILED/);
      expect(ce.replyText).toMatch(/x-max-length/);
      expect(ce.failedMethod?.methodName).toBe('queue.declare');
      expect(ce.message).toContain('406');

      const ex = exName();
      const ch2 = await conn.channel();
      await ch2.exchangeDeclare(ex, 'direct', { durable: false });
      const exErr = await rejection(ch2.exchangeDeclare(ex, 'fanout', { durable: false }));
      expect((exErr as ChannelError).replyCode).toBe(406);
      expect((exErr as ChannelError).failedMethod?.methodName).toBe('exchange.declare');
    });

    it('publishing to a missing exchange: the confirm promise rejects with the 404 ChannelError', async () => {
      const ch = await conn.channel();
      await ch.confirmSelect();
      const err = await rejection(ch.publish(uniqueName('client-channel-noex'), 'rk', 'lost'));
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(404);
      expect((err as ChannelError).failedMethod?.methodName).toBe('basic.publish');
    });

    it('close(): "close" emits undefined; later calls reject with ClosedError; the number is reused', async () => {
      const ch = await conn.channel();
      const id = ch.id;
      const events: Array<AmqpError | undefined> = [];
      ch.on('close', (e) => events.push(e));
      const pending = ch.queueDeclare('', { exclusive: true });
      await ch.close();
      expect((await pending).queue).toMatch(/^amq\.gen-/);
      expect(events).toEqual([undefined]);
      expect(ch.closeReason).toBeUndefined();
      await expect(ch.queueDeclare('', { exclusive: true })).rejects.toBeInstanceOf(ClosedError);
      const next = await conn.channel();
      expect(next.id).toBe(id);
      await next.close();
    });
  });

  describe('per-method timeout', () => {
    it('a stalled broker: TimeoutError naming the method, the channel closes, the connection survives the late reply', async () => {
      const { host, port } = brokerAddress();
      const proxy = new TcpProxy({ host, port });
      await proxy.start();
      const stalledConn = await AmqpConnection.connect({
        url: proxy.url('guest', 'guest', 'heartbeat=0'),
        logger: silentLogger,
      });
      try {
        const ch = await stalledConn.channel();
        expect(ch.id).toBe(1);
        const released = new Promise<void>((resolve) => {
          const orig = stalledConn.releaseChannel.bind(stalledConn);
          jest.spyOn(stalledConn, 'releaseChannel').mockImplementation((id: number) => {
            orig(id);
            if (id === 1) resolve();
          });
        });
        const closed = once(ch, 'close') as Promise<[AmqpError | undefined]>;
        proxy.stall();
        const started = Date.now();
        const first = ch.queueDeclare('', { exclusive: true, timeout: 300 });
        const queued = ch.queueDeclare('', { exclusive: true, timeout: 10_000 });
        const err = await rejection(first);
        const elapsed = Date.now() - started;
        expect(err).toBeInstanceOf(TimeoutError);
        expect((err as TimeoutError).operation).toBe('queue.declare');
        expect((err as TimeoutError).timeoutMs).toBe(300);
        expect(err.message).toContain('queue.declare');
        expect(elapsed).toBeGreaterThanOrEqual(290);
        expect(elapsed).toBeLessThan(3000);
        expect(await rejection(queued)).toBe(err);
        const [closeErr] = await closed;
        expect(closeErr).toBe(err);
        expect(ch.isOpen).toBe(false);
        await expect(ch.queueDeclare('', { exclusive: true })).rejects.toBe(err);

        // Let the late declare-ok and the close-ok through: the connection must shrug them off.
        const connClosed = once(stalledConn, 'close').then(([e]: unknown[]) => {
          throw new Error(`the connection closed: ${String(e)}`);
        });
        proxy.resume();
        await Promise.race([released, connClosed]);
        expect(stalledConn.isOpen).toBe(true);
        const again = await stalledConn.channel();
        expect(again.id).toBe(1);
        expect((await again.queueDeclare('', { exclusive: true })).queue).toMatch(/^amq\.gen-/);
      } finally {
        await stalledConn.close();
        await proxy.close();
      }
    });

    it('the connection-wide operation_timeout applies when no per-call timeout is given', async () => {
      const { host, port } = brokerAddress();
      const proxy = new TcpProxy({ host, port });
      await proxy.start();
      const c = await AmqpConnection.connect({
        url: proxy.url('guest', 'guest', 'heartbeat=0&operation_timeout=0.2'),
        logger: silentLogger,
      });
      try {
        const ch = await c.channel();
        proxy.stall();
        const err = await rejection(ch.exchangeDeclare('amq.direct', 'direct', { passive: true }));
        expect(err).toBeInstanceOf(TimeoutError);
        expect((err as TimeoutError).operation).toBe('exchange.declare');
        expect((err as TimeoutError).timeoutMs).toBe(200);
      } finally {
        proxy.resume();
        c.destroy();
        await proxy.close();
      }
    });
  });
});
