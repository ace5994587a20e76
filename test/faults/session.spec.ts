import { once } from 'node:events';
import {
  AmqpConnection,
  AmqpError,
  AmqpSession,
  AuthenticationError,
  BufferOverflowError,
  Channel,
  ChannelError,
  ClosedError,
  ConnectionLostError,
  NackError,
  ReplyCode,
  TimeoutError,
  UnroutableError,
  type SessionMessage,
  type SessionOptions,
  type SessionRole,
} from '../../lib';
import {
  amqpUrl,
  brokerAddress,
  killConnection,
  listConnections,
  queueCounts,
  queueExists,
  uniqueName,
  waitFor,
} from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { collector as collect } from '../support/collector';

jest.setTimeout(30_000);

/** A logger that records warnings (the session reports channel errors it recovers from there). */
function recordingLogger(): { warnings: string[]; debug: () => void; warn: (m: string) => void; error: () => void } {
  const warnings: string[] = [];
  return { warnings, debug: () => undefined, warn: (m) => warnings.push(m), error: () => undefined };
}

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err as Error,
  );
}

/** The next `event` for `role`. */
function nextFor(session: AmqpSession, event: 'recovered' | 'connected', role: SessionRole): Promise<void> {
  return new Promise((resolve) => {
    const on = (r: SessionRole): void => {
      if (r !== role) return;
      session.off(event, on);
      resolve();
    };
    session.on(event, on);
  });
}

/** Resolves once `session` has emitted `reconnecting` n times (counting from now). */
function reconnectingTimes(session: AmqpSession, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const on = (): void => {
      if (++seen < n) return;
      session.off('reconnecting', on);
      resolve();
    };
    session.on('reconnecting', on);
  });
}

/** A session name unique to this run; its connections are `<name>:publisher` / `<name>:consumer`. */
interface Started {
  session: AmqpSession;
  name: string;
}

describe('AmqpSession (managed client)', () => {
  let admin: AmqpConnection;
  const sessions: AmqpSession[] = [];
  const proxies: TcpProxy[] = [];
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  const quiet = recordingLogger();

  beforeAll(async () => {
    admin = await AmqpConnection.connect({ url: amqpUrl(), logger: quiet });
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(sessions.splice(0).map((s) => s.close().catch(() => undefined)));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    if (!admin.isOpen) admin = await AmqpConnection.connect({ url: amqpUrl(), logger: quiet });
    for (const q of queues) await onAdmin((ch) => ch.queueDelete(q)).catch(() => undefined);
    for (const ex of exchanges) await onAdmin((ch) => ch.exchangeDelete(ex)).catch(() => undefined);
    await admin.close();
  });

  /** Run one operation on a fresh admin channel (a channel error only costs that channel). */
  async function onAdmin<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await admin.channel();
    try {
      return await op(ch);
    } finally {
      if (ch.isOpen) await ch.close();
    }
  }

  const qName = (prefix = 'session-q'): string => {
    const name = uniqueName(prefix);
    queues.add(name);
    return name;
  };
  const exName = (prefix = 'session-ex'): string => {
    const name = uniqueName(prefix);
    exchanges.add(name);
    return name;
  };

  function create(options: SessionOptions = {}): Started {
    const name = uniqueName('warren-session');
    const session = new AmqpSession({
      url: amqpUrl(),
      connectionName: name,
      logger: quiet,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      ...options,
    });
    sessions.push(session);
    return { session, name };
  }

  async function started(options: SessionOptions = {}): Promise<Started> {
    const s = create(options);
    await s.session.connect();
    return s;
  }

  async function proxy(): Promise<TcpProxy> {
    const p = new TcpProxy(brokerAddress());
    await p.start();
    proxies.push(p);
    return p;
  }

  /** Kill one of the session's connections from the broker side and wait until the session has recovered it. */
  async function killAndRecover(s: Started, role: SessionRole): Promise<void> {
    const recovered = nextFor(s.session, 'recovered', role);
    await killConnection(`${s.name}:${role}`);
    await recovered;
  }

  describe('connections', () => {
    it('opens two connections by default, named <name>:publisher and <name>:consumer', async () => {
      const { session, name } = await started();
      expect(session.isReady).toBe(true);
      const mine = await waitFor(
        async () => {
          const found = (await listConnections()).filter((c) => c.clientName?.startsWith(`${name}:`));
          return found.length >= 2 ? found : undefined;
        },
        10_000,
        'both session connections to be listed',
      );
      expect(mine.map((c) => c.clientName).sort()).toEqual([`${name}:consumer`, `${name}:publisher`]);
      // Two different TCP connections.
      expect(new Set(mine.map((c) => c.peerPort)).size).toBe(2);
    });

    it("connections: 'single' shares one connection for publishing and consuming", async () => {
      const { session, name } = await started({ connections: 'single' });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const got = collect<SessionMessage>();
      await session.consume(q, got.handler, { noAck: true });
      await session.publish('', q, 'over one connection');
      await got.atLeast(1);
      expect(got.bodies()).toEqual(['over one connection']);
      const mine = (await listConnections()).filter((c) => c.clientName?.startsWith(`${name}:`));
      expect(mine).toHaveLength(1);
    });
  });

  describe('channel pool', () => {
    it('acquire() leases channels exclusively and waits a bounded time (TimeoutError) when all are leased', async () => {
      const { session } = await started({ pool: { size: 2, acquireTimeoutMs: 300 } });
      const a = await session.acquire();
      const b = await session.acquire();
      expect(a).not.toBe(b);
      expect(a.confirmMode && b.confirmMode).toBe(true);

      const t0 = Date.now();
      const err = await rejection(session.acquire());
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).operation).toBe('acquire');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);

      // A waiter gets the first channel given back.
      const waiting = session.acquire();
      session.release(a);
      await expect(waiting).resolves.toBe(a);
      session.release(a);
      session.release(b);
    });

    it('one-shot publishes made while every channel is leased go out once a channel is released', async () => {
      const { session } = await started({ pool: { size: 1, acquireTimeoutMs: 1000 } });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const only = await session.acquire();
      let settled = false;
      const p = session.publish('', q, 'waited for a channel').finally(() => (settled = true));
      // The publish cannot go on the leased channel; it goes out when the channel is back in rotation.
      await only.publish('', q, 'on the leased channel');
      expect(settled).toBe(false);
      session.release(only);
      await p;
      const first = await session.get(q, { noAck: true });
      const second = await session.get(q, { noAck: true });
      expect([first?.body.toString(), second?.body.toString()]).toEqual([
        'on the leased channel',
        'waited for a channel',
      ]);
    });

    it('a channel closed by a channel error is dropped and replaced; later publishes still work', async () => {
      const { session } = await started({ pool: { size: 2, acquireTimeoutMs: 3000 } });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const broken = await session.acquire();
      const err = await rejection(broken.publish(uniqueName('session-missing-ex'), 'rk', 'nowhere'));
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(ReplyCode.NOT_FOUND);
      expect(broken.isOpen).toBe(false);
      session.release(broken);

      // Both pool slots are usable again, by open channels other than the broken one.
      const x = await session.acquire();
      const y = await session.acquire();
      expect([x, y]).not.toContain(broken);
      expect(x.isOpen && y.isOpen).toBe(true);
      expect(x).not.toBe(y);
      session.release(x);
      session.release(y);

      await Promise.all([1, 2, 3, 4].map((i) => session.publish('', q, `after ${i}`)));
      expect((await onAdmin((ch) => ch.queueDeclare(q, { passive: true }))).messageCount).toBe(4);
    });

    it('concurrent publishes are spread over several pooled channels', async () => {
      const { session } = await started({ pool: { size: 4 } });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const spy = jest.spyOn(Channel.prototype, 'publishAwaiting');
      await Promise.all(Array.from({ length: 40 }, (_, i) => session.publish('', q, `m${i}`)));
      const channels = new Set((spy.mock.contexts as Channel[]).map((ch) => ch.id));
      expect(channels.size).toBe(4);
      expect(spy).toHaveBeenCalledTimes(40);
    });
  });

  describe('publish', () => {
    it('resolves on the confirm, rejects with NackError when the broker refuses and UnroutableError when mandatory', async () => {
      const { session } = await started();
      const q = qName('session-q-max1');
      await session.queueDeclare(q, {
        durable: false,
        arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
      });
      await expect(session.publish('', q, 'first')).resolves.toBeUndefined();
      expect((await onAdmin((ch) => ch.queueDeclare(q, { passive: true }))).messageCount).toBe(1);

      const nacked = await rejection(session.publish('', q, 'second'));
      expect(nacked).toBeInstanceOf(NackError);

      const nobody = uniqueName('session-no-such-queue');
      const returned = await rejection(session.publish('', nobody, 'lost', { mandatory: true }));
      expect(returned).toBeInstanceOf(UnroutableError);
      expect((returned as UnroutableError).replyCode).toBe(ReplyCode.NO_ROUTE);
      expect((returned as UnroutableError).returned.routingKey).toBe(nobody);

      // None of that broke the pool.
      const ok = qName();
      await session.queueDeclare(ok, { durable: false });
      await expect(session.publish('', ok, 'fine')).resolves.toBeUndefined();
    });
  });

  describe('consumers', () => {
    it('an async handler that rejects is logged with its queue; the consumer goes on and the message stays unacked', async () => {
      const errors: string[] = [];
      const logger = { debug: () => undefined, warn: () => undefined, error: (m: string) => errors.push(m) };
      const { session } = await started({ logger });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const seen = collect<SessionMessage>();
      await session.consume(q, async (m) => {
        seen.handler(m);
        await Promise.resolve();
        if (m.body.toString() === 'bad') throw new Error('handler broke');
        m.ack();
      });
      await session.publish('', q, 'bad');
      await session.publish('', q, 'good');
      await seen.atLeast(2);
      await waitFor(() => errors.length > 0, 5_000, 'the logged failure');
      expect(errors[0]).toContain(`queue '${q}'`);
      expect(errors[0]).toContain('handler broke');
      await waitFor(
        async () => {
          const c = await queueCounts(q);
          return c !== undefined && c.ready === 0 && c.unacked === 1;
        },
        10_000,
        'only the failed message unacked',
      );
    });

    it('each consumer has its own channel: a channel error in one does not disturb another', async () => {
      const logger = recordingLogger();
      const { session } = await started({ logger });
      const q1 = qName();
      const q2 = qName();
      await session.queueDeclare(q1, { durable: false });
      await session.queueDeclare(q2, { durable: false });

      const one = collect<SessionMessage>();
      await session.consume(q1, (m) => {
        one.handler(m);
        m.ack();
        // Acking twice: the broker closes this consumer's channel (406 unknown delivery tag).
        if (m.body.toString() === 'poison') m.ack();
      });
      const two = collect<SessionMessage>();
      await session.consume(q2, two.handler);

      // Consumer two holds an unacked delivery while consumer one's channel dies.
      await session.publish('', q2, 'held');
      await two.atLeast(1);
      await session.publish('', q1, 'poison');
      await one.atLeast(1);
      await waitFor(() => logger.warnings.some((w) => /channel closed/.test(w)), 10_000, 'the channel error');

      // Had they shared a channel, this ack would be lost and 'held' redelivered.
      two.messages[0].ack();
      await session.publish('', q2, 'after');
      await two.atLeast(2);
      expect(two.bodies()).toEqual(['held', 'after']);
      expect(two.messages.map((m) => m.fields.redelivered)).toEqual([false, false]);
      two.messages[1].ack();

      // Consumer one comes back on a new channel.
      await session.publish('', q1, 'again');
      await one.atLeast(2);
      expect(one.bodies()).toEqual(['poison', 'again']);
      await waitFor(async () => {
        const c = await queueCounts(q2);
        return c !== undefined && c.ready === 0 && c.unacked === 0;
      });
    });

    it('an ack of a message delivered before a connection loss is dropped, not sent on the new channel', async () => {
      const logger = recordingLogger();
      const s = await started({ logger });
      const { session } = s;
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      const got = collect<SessionMessage>();
      await session.consume(q, got.handler, { prefetch: 10 });
      for (const body of ['m1', 'm2', 'm3']) await session.publish('', q, body);
      await got.atLeast(3);
      got.messages[0].ack();
      got.messages[1].ack();
      await waitFor(async () => (await queueCounts(q))?.unacked === 1, 10_000, 'm1 and m2 acked');
      const stale = got.messages[2];
      expect(stale.fields.deliveryTag).toBe(3);

      await killAndRecover(s, 'consumer');
      await got.atLeast(4);
      const redelivered = got.messages[3];
      expect(redelivered.body.toString()).toBe('m3');
      expect(redelivered.fields.redelivered).toBe(true);
      expect(redelivered.fields.deliveryTag).toBe(1);

      // Delivery tag 3 does not exist on the new channel: sending it there would be a 406 channel error.
      stale.ack();
      redelivered.ack();
      await session.publish('', q, 'm4');
      await got.atLeast(5);
      expect(got.bodies()).toEqual(['m1', 'm2', 'm3', 'm3', 'm4']);
      got.messages[4].ack();
      expect(logger.warnings.filter((w) => /channel closed/.test(w))).toEqual([]);
      await waitFor(async () => {
        const c = await queueCounts(q);
        return c !== undefined && c.ready === 0 && c.unacked === 0;
      });
    });

    it('a server-named exclusive queue is re-declared under a new name (queueRenamed); binding and handler follow', async () => {
      const s = await started();
      const { session } = s;
      const ex = exName();
      await session.exchangeDeclare(ex, 'direct', { durable: false });
      const { queue: first } = await session.queueDeclare('', { exclusive: true });
      await session.queueBind(first, ex, 'rk');
      const got = collect<SessionMessage>();
      const handler = jest.fn(got.handler);
      const consumer = await session.consume(first, handler, { noAck: true });
      expect(consumer.queue).toBe(first);
      await session.publish(ex, 'rk', 'before');
      await got.atLeast(1);

      const renamed = once(session, 'queueRenamed') as Promise<[{ from: string; to: string }]>;
      await killAndRecover(s, 'consumer');
      const [info] = await renamed;
      expect(info.from).toBe(first);
      expect(info.to).not.toBe(first);
      expect(info.to).toMatch(/^amq\.gen-/);
      expect(consumer.queue).toBe(info.to);
      expect(await queueExists(first)).toBe(false);

      await session.publish(ex, 'rk', 'after', { mandatory: true });
      await got.atLeast(2);
      expect(got.bodies()).toEqual(['before', 'after']);
      expect(handler).toHaveBeenCalledTimes(2);
    });
  });

  describe('recorded topology', () => {
    it('deleted queues and exchanges are removed from the record: not re-declared after a reconnect', async () => {
      const s = await started();
      const { session } = s;
      const gone = qName('session-deleted-q');
      const goneEx = exName('session-deleted-ex');
      const kept = qName('session-kept-q');
      await session.queueDeclare(gone, { durable: false });
      await session.exchangeDeclare(goneEx, 'fanout', { durable: false });
      await session.queueDeclare(kept, { durable: false });
      await session.queueDelete(gone);
      await session.exchangeDelete(goneEx);
      // The control: deleted behind the session's back, so only a replay brings it back.
      await onAdmin((ch) => ch.queueDelete(kept));

      await killAndRecover(s, 'consumer');
      expect(await queueExists(kept)).toBe(true);
      expect(await queueExists(gone)).toBe(false);
      const err = await rejection(onAdmin((ch) => ch.exchangeDeclare(goneEx, 'fanout', { passive: true })));
      expect(err).toBeInstanceOf(ChannelError);
      expect((err as ChannelError).replyCode).toBe(ReplyCode.NOT_FOUND);
    });

    it('an auto-delete queue whose last consumer was cancelled is dropped from the record', async () => {
      const s = await started();
      const { session } = s;
      const auto = qName('session-autodelete-q');
      const kept = qName('session-kept-q');
      await session.queueDeclare(auto, { durable: false, autoDelete: true });
      await session.queueDeclare(kept, { durable: false });
      const consumer = await session.consume(auto, () => undefined, { noAck: true });
      await consumer.cancel();
      await waitFor(async () => !(await queueExists(auto)), 10_000, 'the broker to auto-delete the queue');
      await onAdmin((ch) => ch.queueDelete(kept));

      await killAndRecover(s, 'consumer');
      expect(await queueExists(kept)).toBe(true);
      expect(await queueExists(auto)).toBe(false);
    });
  });

  describe('failures', () => {
    it('a get in flight when the connection is lost rejects with ConnectionLostError', async () => {
      const p = await proxy();
      const { session } = await started({ url: p.url(), operationTimeout: 5 });
      const q = qName();
      await session.queueDeclare(q, { durable: false });
      p.stall();
      const held = once(p, 'held');
      const get = rejection(session.get(q));
      await held; // the basic.get is on its way, its answer cannot come back
      p.cut();
      p.resume();
      const err = await get;
      expect(err).toBeInstanceOf(ConnectionLostError);
      await session.whenReady(10_000);
      await expect(session.get(q)).resolves.toBeNull();
    });

    it('a refused login reaches connect() as AuthenticationError once: no retries', async () => {
      const url = new URL(amqpUrl());
      url.password = 'definitely-not-the-password';
      const attempts = jest.spyOn(AmqpConnection, 'connectOnce');
      const { session } = create({ url: url.toString() });
      let reconnecting = 0;
      session.on('reconnecting', () => reconnecting++);
      const failed: Error[] = [];
      session.on('recoveryFailed', (_role, e) => failed.push(e));

      const err = await rejection(session.connect());
      expect(err).toBeInstanceOf(AuthenticationError);
      expect((err as AuthenticationError).replyCode).toBe(ReplyCode.ACCESS_REFUSED);
      expect(attempts).toHaveBeenCalledTimes(2); // one per connection (publisher, consumer)
      // Nothing keeps trying in the background (backoff is 20-100 ms here: a retry storm would show).
      await new Promise((r) => setTimeout(r, 500));
      expect(attempts).toHaveBeenCalledTimes(2);
      expect(reconnecting).toBe(0);
      // One recoveryFailed per role (publisher, consumer), each with the refusal: not vacuously true on none.
      expect(failed).toHaveLength(2);
      expect(failed.every((e) => e instanceof AuthenticationError)).toBe(true);
    });

    it('failFast: connect() rejects at once when the broker is unreachable', async () => {
      const p = await proxy();
      p.refuse(true);
      const { session } = create({ url: p.url(), failFast: true });
      let reconnecting = 0;
      session.on('reconnecting', () => reconnecting++);
      const err = await rejection(session.connect());
      expect(err).toBeInstanceOf(AmqpError);
      expect(err).not.toBeInstanceOf(AuthenticationError);
      expect(reconnecting).toBe(0);
    });

    it('by default connect() keeps trying; a publish waits in the buffer and is confirmed once connected', async () => {
      const p = await proxy();
      p.refuse(true);
      const q = qName();
      await onAdmin((ch) => ch.queueDeclare(q, { durable: false }));
      const { session } = create({ url: p.url() });
      const retrying = reconnectingTimes(session, 3);
      const connecting = session.connect();
      await retrying;
      expect(session.isReady).toBe(false);

      let settled = false;
      const published = session.publish('', q, 'buffered').finally(() => (settled = true));
      await reconnectingTimes(session, 2);
      expect(settled).toBe(false);

      const connected = nextFor(session, 'connected', 'publisher');
      p.refuse(false);
      await connected;
      await connecting;
      await published;
      const m = await onAdmin((ch) => ch.get(q, { noAck: true }));
      expect(m?.body.toString()).toBe('buffered');
    });

    it('consume() called while the broker is unreachable starts exactly one consumer once connected', async () => {
      const p = await proxy();
      p.refuse(true);
      const q = qName();
      await onAdmin((ch) => ch.queueDeclare(q, { durable: false }));
      const { session } = create({ url: p.url() });
      const retrying = reconnectingTimes(session, 2);
      const connecting = session.connect();
      await retrying;
      const got = collect<SessionMessage>();
      const consuming = session.consume(q, got.handler, { noAck: true });
      await reconnectingTimes(session, 1);
      p.refuse(false);
      await connecting;
      const consumer = await consuming;
      expect((await onAdmin((ch) => ch.queueDeclare(q, { passive: true }))).consumerCount).toBe(1);
      await session.publish('', q, 'once');
      await got.atLeast(1);
      await consumer.cancel();
      expect((await onAdmin((ch) => ch.queueDeclare(q, { passive: true }))).consumerCount).toBe(0);
      expect(got.bodies()).toEqual(['once']);
    });

    it('a publish held for topology recovery is not stranded when the consumer connection dies mid-recovery', async () => {
      const s = await started();
      const { session, name } = s;
      const q = qName();
      const ex = `${q}.x`;
      await session.exchangeDeclare(ex, 'direct', { durable: false, autoDelete: false });
      await session.queueDeclare(q, { durable: false });
      await session.queueBind(q, ex, 'k');
      // Hold the consumer connection's reconnects until told; keep the last connection it opened.
      const real = AmqpConnection.connectOnce.bind(AmqpConnection);
      let openGate: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      let lastConsumerConn: AmqpConnection | null = null;
      jest.spyOn(AmqpConnection, 'connectOnce').mockImplementation(async (endpoint, options, logger) => {
        const isConsumer = options.connectionName === `${name}:consumer`;
        if (isConsumer) await gate;
        const conn = await real(endpoint, options, logger);
        if (isConsumer) lastConsumerConn = conn;
        return conn;
      });
      const publisherBack = nextFor(session, 'recovered', 'publisher');
      const consumerDown = new Promise<void>((resolve) =>
        session.on('disconnected', (role) => role === 'consumer' && resolve()),
      );
      await killConnection(`${name}:consumer`);
      await consumerDown;
      await killConnection(`${name}:publisher`);
      await publisherBack;
      // The publisher is back, but the exchange is one the session recorded and the consumer side has not
      // replayed the topology yet: the publish waits for that replay.
      const held = session.publish(ex, 'k', 'through');

      // The consumer's next connection dies as soon as it is up (before the topology is replayed).
      let sabotaged = false;
      session.on('connected', (role) => {
        if (role !== 'consumer' || sabotaged || !lastConsumerConn) return;
        sabotaged = true;
        lastConsumerConn.destroy(new ConnectionLostError('killed by the test during recovery'));
      });
      const consumerRecovered = nextFor(session, 'recovered', 'consumer');
      openGate();
      await consumerRecovered;
      expect(sabotaged).toBe(true);
      await held;
      expect((await onAdmin((ch) => ch.queueDeclare(q, { passive: true }))).messageCount).toBe(1);
      await onAdmin((ch) => ch.exchangeDelete(ex));
    });

    it('the outage buffer is bounded: the publish beyond maxMessages rejects at once with BufferOverflowError', async () => {
      const p = await proxy();
      p.refuse(true);
      const { session } = create({ url: p.url(), publishBuffer: { maxMessages: 5 } });
      const connecting = session.connect().catch((e: Error) => e);
      const outcomes = Array.from({ length: 5 }, (_, i) =>
        session.publish('', 'nowhere', `m${i}`).catch((e: Error) => e),
      );
      const t0 = Date.now();
      const err = await rejection(session.publish('', 'nowhere', 'm5'));
      expect(err).toBeInstanceOf(BufferOverflowError);
      expect(Date.now() - t0).toBeLessThan(100);
      // The five held ones are still waiting; closing the session fails them.
      await session.close();
      const results = await Promise.all(outcomes);
      expect(results.every((r) => r instanceof ClosedError)).toBe(true);
      expect(await connecting).toBeInstanceOf(ClosedError);
    });

    it('a buffered publish rejects with TimeoutError after publishBuffer.timeoutMs', async () => {
      const p = await proxy();
      p.refuse(true);
      const { session } = create({ url: p.url(), publishBuffer: { timeoutMs: 300 } });
      const connecting = session.connect().catch((e: Error) => e);
      const t0 = Date.now();
      const err = await rejection(session.publish('', 'nowhere', 'waits'));
      const waited = Date.now() - t0;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).operation).toBe('publish');
      expect(waited).toBeGreaterThanOrEqual(290);
      expect(waited).toBeLessThan(3000);
      await session.close();
      await connecting;
    });
  });
});
