import { once } from 'node:events';
import {
  AmqpConnection,
  MessageTooLargeError,
  TimeoutError,
  UnsupportedError,
  type Channel,
  type Message,
  type OversizedMessage,
} from '../../lib';
import type { FieldTable } from '../../lib/amqp/protocol/field-table';
import { FRAME_BODY } from '../../lib/amqp/protocol/frame-parser';
import { FakeAmqpServer, RABBIT_CAPABILITIES, rawFrame, type FakePeer } from '../support/fake-amqp-server';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const MiB = 1024 * 1024;

/** A fake broker that completes the handshake (with `capabilities`) and answers the usual methods. */
async function fakeBroker(
  capabilities?: FieldTable | null,
  query = '',
  options: Record<string, unknown> = {},
): Promise<{ server: FakeAmqpServer; peer: FakePeer; conn: AmqpConnection; ch: Channel }> {
  const server = await FakeAmqpServer.start(async (p) => {
    await p.handshake({ capabilities });
    p.autoReply();
  });
  const conn = await AmqpConnection.connect({ url: server.url(query), logger: silent, ...options });
  const ch = await conn.channel();
  return { server, peer: await server.peer(0), conn, ch };
}

/** Write `total` body bytes for `channel` in 4 KiB frames, pacing on the socket's backpressure. */
async function sendBody(peer: FakePeer, channel: number, total: number): Promise<void> {
  const frameSize = 4096;
  const batch = Buffer.concat(Array.from({ length: 16 }, () => rawFrame(FRAME_BODY, channel, Buffer.alloc(frameSize))));
  let left = total;
  while (left >= 16 * frameSize) {
    if (!peer.socket.write(batch)) await once(peer.socket, 'drain');
    left -= 16 * frameSize;
  }
  for (; left > 0; left -= Math.min(left, frameSize)) {
    peer.socket.write(rawFrame(FRAME_BODY, channel, Buffer.alloc(Math.min(left, frameSize))));
  }
}

/**
 * Timers created while tracking that have neither fired nor been cleared (the process's own count of
 * active timers would include those of other code, which come and go on their own).
 */
function trackTimers(): { live: () => number; restore: () => void } {
  const live = new Set<unknown>();
  const realSet = global.setTimeout;
  const realClear = global.clearTimeout;
  const set = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
    const t = realSet(() => {
      live.delete(t);
      fn();
    }, ms);
    live.add(t);
    return t;
  }) as unknown as typeof setTimeout);
  const clear = jest.spyOn(global, 'clearTimeout').mockImplementation((t) => {
    live.delete(t);
    realClear(t);
  });
  return {
    live: () => live.size,
    restore: () => {
      set.mockRestore();
      clear.mockRestore();
    },
  };
}

describe('Channel against a hostile or limited peer', () => {
  let server: FakeAmqpServer | undefined;
  let conn: AmqpConnection | undefined;

  /** Undo of something a test set up (timer tracking). */
  let afterThis: (() => void) | undefined;

  afterEach(async () => {
    afterThis?.();
    afterThis = undefined;
    conn?.destroy();
    await server?.close();
    conn = undefined;
    server = undefined;
  });

  describe('a message over maxMessageSize', () => {
    it('skips a 100 MiB body without allocating it, rejects it without requeue, reports it, and keeps consuming', async () => {
      const b = await fakeBroker(undefined, '', { maxMessageSize: MiB });
      ({ server, conn } = b);
      const { peer, ch } = b;
      const messages: Message[] = [];
      const got = new Promise<Message>((resolve) =>
        ch.consume(
          'q1',
          (m) => {
            messages.push(m);
            resolve(m);
          },
          { consumerTag: 'c1', noAck: true },
        ),
      );
      await ch.consume('q2', () => undefined, { consumerTag: 'c2' });
      const reports: OversizedMessage[] = [];
      ch.on('messageTooLarge', (r) => reports.push(r));
      const channelClosed = jest.fn();
      ch.on('close', channelClosed);

      const spy = jest.spyOn(Buffer, 'allocUnsafe');
      const size = 100 * MiB;
      peer.write(
        peer.frame(ch.id, 'basic.deliver', {
          consumerTag: 'c2',
          deliveryTag: 1,
          redelivered: false,
          exchange: 'ex',
          routingKey: 'big.key',
        }),
        ...peer.contentFrames_(ch.id, Buffer.alloc(0), { messageId: 'm-big' }, size),
      );
      await sendBody(peer, ch.id, size);
      peer.deliver(
        ch.id,
        { consumerTag: 'c1', deliveryTag: 2, redelivered: false, exchange: 'ex', routingKey: 'small' },
        Buffer.from('small one'),
      );
      const reject = await peer.expect('basic.reject');
      const small = await got;
      const largest = Math.max(0, ...spy.mock.calls.map(([n]) => n));
      spy.mockRestore();

      expect(reject.args).toEqual({ deliveryTag: 1, requeue: false });
      expect(small.body.toString()).toBe('small one');
      expect(largest).toBeLessThan(MiB);
      expect(reports).toEqual([
        {
          kind: 'deliver',
          size,
          limit: MiB,
          queue: 'q2',
          exchange: 'ex',
          routingKey: 'big.key',
          messageId: 'm-big',
          deliveryTag: 1,
        },
      ]);
      expect(ch.isOpen).toBe(true);
      expect(conn.isOpen).toBe(true);
      expect(channelClosed).not.toHaveBeenCalled();
      expect(peer.count('connection.close')).toBe(0);
    });

    it('logs the skipped message with its size, queue, routing key and message id', async () => {
      const server_ = await FakeAmqpServer.start(async (p) => {
        await p.handshake();
        p.autoReply();
      });
      server = server_;
      const warnings: string[] = [];
      conn = await AmqpConnection.connect({
        url: server_.url(),
        maxMessageSize: 100,
        logger: { ...silent, warn: (m: string) => warnings.push(m) },
      });
      const ch = await conn.channel();
      const peer = await server_.peer(0);
      await ch.consume('orders', () => undefined, { consumerTag: 'c1' });
      const reported = once(ch, 'messageTooLarge');
      peer.deliver(
        ch.id,
        { consumerTag: 'c1', deliveryTag: 7, redelivered: false, exchange: '', routingKey: 'orders' },
        Buffer.alloc(101),
        { messageId: 'order-42' },
      );
      await reported;
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/101 bytes/);
      expect(warnings[0]).toMatch(/maxMessageSize 100/);
      expect(warnings[0]).toMatch(/queue 'orders'/);
      expect(warnings[0]).toMatch(/routing key 'orders'/);
      expect(warnings[0]).toMatch(/message id 'order-42'/);
    });

    it('fails a basic.get of it with MessageTooLargeError and rejects it without requeue', async () => {
      const b = await fakeBroker(undefined, 'max_message_size=10');
      ({ server, conn } = b);
      const { peer, ch } = b;
      peer.autoReply([], (r) => {
        if (r.method.name !== 'basic.get') return false;
        peer.write(
          peer.frame(r.channel, 'basic.get-ok', {
            deliveryTag: 3,
            redelivered: false,
            exchange: '',
            routingKey: 'jobs',
            messageCount: 0,
          }),
          ...peer.contentFrames_(r.channel, Buffer.alloc(11)),
        );
        return true;
      });
      const err = await ch.get('jobs').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MessageTooLargeError);
      expect(err).toMatchObject({ size: 11, limit: 10, oversized: { kind: 'get', queue: 'jobs', deliveryTag: 3 } });
      expect((await peer.expect('basic.reject')).args).toEqual({ deliveryTag: 3, requeue: false });
      // The channel still works.
      expect((await ch.queueDeclare('after')).queue).toBe('after');
    });
  });

  it('does not allocate a body within the limit at its announced size before its bytes arrive', async () => {
    const b = await fakeBroker();
    ({ server, conn } = b);
    const { peer, ch } = b;
    const other = await conn.channel();
    await ch.consume('big', () => undefined, { consumerTag: 'c1' });
    let arrived!: () => void;
    const probe = new Promise<void>((resolve) => (arrived = resolve));
    await other.consume('probe', () => arrived(), { consumerTag: 'p' });
    const before = process.memoryUsage().arrayBuffers;
    const spy = jest.spyOn(Buffer, 'allocUnsafe');
    peer.write(
      peer.frame(ch.id, 'basic.deliver', {
        consumerTag: 'c1',
        deliveryTag: 1,
        redelivered: false,
        exchange: '',
        routingKey: 'big',
      }),
      ...peer.contentFrames_(ch.id, Buffer.alloc(0), undefined, 100 * MiB),
      rawFrame(FRAME_BODY, ch.id, Buffer.alloc(10)),
      rawFrame(FRAME_BODY, ch.id, Buffer.alloc(1000)),
    );
    // A delivery on another channel, written after them: once it arrives, those frames were read.
    peer.deliver(
      other.id,
      { consumerTag: 'p', deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'probe' },
      Buffer.from('x'),
    );
    await probe;
    const largest = Math.max(0, ...spy.mock.calls.map(([n]) => n));
    spy.mockRestore();
    expect(largest).toBeLessThanOrEqual(MiB);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MiB);
  });

  describe('server capabilities', () => {
    const without = (capability: string): FieldTable => {
      const caps: FieldTable = { ...RABBIT_CAPABILITIES };
      delete caps[capability];
      return caps;
    };

    it('fails exchangeBind / exchangeUnbind at once without exchange_exchange_bindings, sending nothing', async () => {
      const b = await fakeBroker(without('exchange_exchange_bindings'));
      ({ server, conn } = b);
      const { peer, ch } = b;
      await expect(ch.exchangeBind('dst', 'src', 'k')).rejects.toMatchObject({
        constructor: UnsupportedError,
        capability: 'exchange_exchange_bindings',
      });
      await expect(ch.exchangeUnbind('dst', 'src', 'k')).rejects.toBeInstanceOf(UnsupportedError);
      await ch.queueDeclare('sync'); // a round trip: anything sent before it has arrived
      expect(peer.count('exchange.bind')).toBe(0);
      expect(peer.count('exchange.unbind')).toBe(0);
      expect(ch.isOpen).toBe(true);
    });

    it('throws from nack synchronously without basic.nack, sending nothing', async () => {
      const b = await fakeBroker({ ...RABBIT_CAPABILITIES, 'basic.nack': false });
      ({ server, conn } = b);
      const { peer, ch } = b;
      expect(() => ch.nack(1)).toThrow(UnsupportedError);
      expect(() => ch.nack(1)).toThrow(expect.objectContaining({ capability: 'basic.nack' }));
      await ch.queueDeclare('sync');
      expect(peer.count('basic.nack')).toBe(0);
    });

    it('fails confirmSelect at once without publisher_confirms and stays out of confirm mode', async () => {
      const b = await fakeBroker(without('publisher_confirms'));
      ({ server, conn } = b);
      const { peer, ch } = b;
      await expect(ch.confirmSelect()).rejects.toMatchObject({ capability: 'publisher_confirms' });
      expect(ch.confirmMode).toBe(false);
      await ch.queueDeclare('sync');
      expect(peer.count('confirm.select')).toBe(0);
    });

    it('fails a consume with onCancel without consumer_cancel_notify (the callback could never fire)', async () => {
      const b = await fakeBroker(without('consumer_cancel_notify'));
      ({ server, conn } = b);
      const { peer, ch } = b;
      await expect(ch.consume('q', () => undefined, { onCancel: () => undefined })).rejects.toMatchObject({
        capability: 'consumer_cancel_notify',
      });
      await ch.queueDeclare('sync');
      expect(peer.count('basic.consume')).toBe(0);
      // Without onCancel the consumer is fine.
      await expect(ch.consume('q', () => undefined)).resolves.toMatchObject({ queue: 'q' });
    });

    it('refuses nothing when the server sent no capabilities table', async () => {
      const b = await fakeBroker(null);
      ({ server, conn } = b);
      const { peer, ch } = b;
      await ch.confirmSelect();
      await ch.exchangeBind('dst', 'src');
      expect(() => ch.nack(1)).not.toThrow();
      expect(peer.count('confirm.select')).toBe(1);
    });
  });

  describe('confirmTimeoutMs', () => {
    it('rejects a publish the broker never confirms with TimeoutError, and ignores its late ack', async () => {
      const b = await fakeBroker(undefined, '', { confirmTimeoutMs: 200 });
      ({ server, conn } = b);
      const { peer, ch } = b;
      await ch.confirmSelect();
      const timers = trackTimers();
      afterThis = timers.restore;
      const started = Date.now();
      const lost = ch.publish('', 'q', 'lost').catch((e: unknown) => e);
      const alsoLost = ch.publish('', 'q', 'lost too').catch((e: unknown) => e);
      const err = await lost;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err).toMatchObject({ operation: 'publish confirm', timeoutMs: 200 });
      expect((err as Error).message).toMatch(/may still have been delivered/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(await alsoLost).toBeInstanceOf(TimeoutError);
      expect(ch.unconfirmedCount).toBe(0);
      expect(timers.live()).toBe(0);

      // The late ack for them changes nothing; the next publish (tag 3) is confirmed normally.
      peer.send(ch.id, 'basic.ack', { deliveryTag: 2, multiple: true });
      const next = ch.publish('', 'q', 'ok');
      peer.send(ch.id, 'basic.ack', { deliveryTag: 3, multiple: false });
      await expect(next).resolves.toBeUndefined();
      expect(timers.live()).toBe(0);
      expect(ch.isOpen).toBe(true);
    });

    it('times out only the publishes past the deadline, re-arming for the next oldest', async () => {
      const b = await fakeBroker(undefined, 'confirm_timeout_ms=300');
      ({ server, conn } = b);
      const { peer, ch } = b;
      await ch.confirmSelect();
      const first = ch.publish('', 'q', '1').catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 150));
      const secondSent = Date.now();
      const second = ch.publish('', 'q', '2').catch((e: unknown) => e);
      const third = ch.publish('', 'q', '3').catch((e: unknown) => e);
      expect(await first).toBeInstanceOf(TimeoutError);
      expect(ch.unconfirmedCount).toBe(2);
      peer.send(ch.id, 'basic.ack', { deliveryTag: 3, multiple: false });
      expect(await third).toBeUndefined();
      // The timer was re-armed for the second publish's own deadline.
      expect(await second).toBeInstanceOf(TimeoutError);
      expect(Date.now() - secondSent).toBeGreaterThanOrEqual(290);
      expect(peer.count('basic.publish')).toBe(3);
    });

    it('leaves no timer behind once every publish is confirmed, and 0 means no bound', async () => {
      const b = await fakeBroker(undefined, '', { confirmTimeoutMs: 0 });
      ({ server, conn } = b);
      const { peer, ch } = b;
      await ch.confirmSelect();
      const timers = trackTimers();
      afterThis = timers.restore;
      const p = ch.publish('', 'q', 'x');
      p.catch(() => undefined);
      expect(timers.live()).toBe(0);
      peer.send(ch.id, 'basic.ack', { deliveryTag: 1, multiple: false });
      await p;

      const c = await AmqpConnection.connect({ url: server.url(), logger: silent });
      try {
        const ch2 = await c.channel();
        await ch2.confirmSelect();
        const peer2 = await server.peer(1);
        const q = ch2.publish('', 'q', 'y');
        q.catch(() => undefined); // settled below; a failed expectation must not leave it unhandled
        const r = ch2.publish('', 'q', 'z');
        r.catch(() => undefined);
        expect(timers.live()).toBe(1); // one timer for the channel, not one per publish
        peer2.send(ch2.id, 'basic.ack', { deliveryTag: 1, multiple: false });
        await q;
        expect(timers.live()).toBe(1);
        peer2.send(ch2.id, 'basic.ack', { deliveryTag: 2, multiple: false });
        await r;
        expect(timers.live()).toBe(0);
      } finally {
        c.destroy();
      }
    });
  });
});
