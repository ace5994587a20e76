import { once } from 'node:events';
import * as net from 'node:net';
import {
  AmqpSession,
  ConfigError,
  ConnectionLostError,
  SetupError,
  TimeoutError,
  type SessionOptions,
} from '../../lib';
import { recordingLogger } from '../support/session-workload';
import { FakeAmqpServer, type FakePeer } from '../support/fake-amqp-server';
import { watchLeftovers } from '../support/leftovers';

jest.setTimeout(20_000);

/** A fake broker whose every connection completes the handshake and answers channel methods like RabbitMQ. */
function healthyBroker(extra?: (peer: FakePeer, index: number) => void | Promise<void>): Promise<FakeAmqpServer> {
  return FakeAmqpServer.start(async (peer, index) => {
    await peer.handshake();
    peer.ackPublishes = true;
    peer.autoReply();
    await extra?.(peer, index);
  });
}

/** A listener that accepts TCP and hangs up at once: every connect to it fails with a lost socket. */
async function hangUpServer(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => count,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const sessions: AmqpSession[] = [];
function session(options: SessionOptions): AmqpSession {
  const s = new AmqpSession({ logger: recordingLogger(), heartbeat: 0, ...options });
  sessions.push(s);
  return s;
}

afterEach(async () => {
  jest.restoreAllMocks();
  for (const s of sessions.splice(0)) await s.close({ timeoutMs: 1000 }).catch(() => undefined);
});

describe('AmqpSession lifecycle: one reconnect policy', () => {
  it('failFast: connect() makes connectionAttempts rounds over the URL list, retryDelay apart, then rejects with the last real error', async () => {
    const a = await hangUpServer();
    try {
      const s = session({
        url: [`amqp://127.0.0.1:${a.port}`],
        connections: 'single',
        failFast: true,
        connectionAttempts: 3,
        retryDelay: 0.15,
      });
      const started = Date.now();
      const err = await s.connect().then(
        () => new Error('connected'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(ConnectionLostError);
      expect(err).not.toBeInstanceOf(TimeoutError);
      expect(a.accepted()).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 150 - 20);
    } finally {
      await a.close();
    }
  });

  it('shuffleUrls changes the order a session tries its URLs in', async () => {
    const dead = await hangUpServer();
    const broker = await healthyBroker();
    try {
      const urls = [`amqp://127.0.0.1:${dead.port}`, broker.url()];
      await session({ url: urls, connections: 'single' }).connect();
      expect(dead.accepted()).toBe(1); // in order: the dead one first
      jest.spyOn(Math, 'random').mockReturnValue(0); // Fisher-Yates with 0 swaps the two
      await session({ url: urls, connections: 'single', shuffleUrls: true }).connect();
      expect(dead.accepted()).toBe(1); // shuffled: the live one first, the dead one never tried
    } finally {
      await dead.close();
      await broker.close();
    }
  });

  it('reconnect.maxAttempts: the session gives up with the last connect error and emits recoveryFailed once', async () => {
    const dead = await hangUpServer();
    try {
      const s = session({
        url: `amqp://127.0.0.1:${dead.port}`,
        connections: 'single',
        reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 4 },
      });
      const failed: Error[] = [];
      s.on('recoveryFailed', (_role, e) => failed.push(e));
      const err = await s.connect().then(
        () => new Error('connected'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(ConnectionLostError);
      expect(dead.accepted()).toBe(4);
      expect(failed.length).toBe(2); // one per role of the shared connection
      expect(failed[0]).toBe(err);
    } finally {
      await dead.close();
    }
  });

  it('a connection that dies right after every successful reconnect backs off (growing delays) and warns', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.999);
    const logger = recordingLogger();
    // Every connection but the first is closed by the "broker" as soon as it is open.
    const broker = await healthyBroker((peer, index) => {
      if (index > 0)
        peer.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 });
    });
    try {
      const s = session({
        url: broker.url(),
        connections: 'single',
        logger,
        reconnect: { initialDelayMs: 40, maxDelayMs: 320, healthyAfterMs: 10_000 },
      });
      await s.connect();
      const connectedAt: number[] = [];
      const six = new Promise<void>((resolve) =>
        s.on('connected', (role) => {
          if (role !== 'publisher') return;
          connectedAt.push(Date.now());
          if (connectedAt.length === 6) resolve();
        }),
      );
      (await broker.peer(0)).destroy();
      await six;
      const gaps = connectedAt.slice(1).map((t, i) => t - connectedAt[i]);
      // The first loss is retried at once; then ceilings 40, 80, 160, 320, 320 (× 0.999): each gap is at least its backoff.
      [40, 80, 160, 320, 320].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min * 0.999 - 15));
      expect(broker.connectionCount).toBeLessThan(10);
      expect(logger.lines.some((l) => /^warn: .*lost \d+ time\(s\) in a row/.test(l))).toBe(true);
    } finally {
      await broker.close();
    }
  });

  it('after a connection stayed healthy for healthyAfterMs, the backoff starts over: the next reconnect is immediate', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.999);
    const broker = await healthyBroker();
    try {
      const s = session({
        url: broker.url(),
        connections: 'single',
        reconnect: { initialDelayMs: 1500, maxDelayMs: 1500, healthyAfterMs: 300 },
      });
      await s.connect();
      const recoveredAfter = async (index: number): Promise<number> => {
        const back = once(s, 'recovered');
        const lostAt = Date.now();
        (await broker.peer(index)).destroy();
        await back;
        return Date.now() - lostAt;
      };
      // Two young deaths in a row: the first is retried at once, the second waits its backoff (~1.5 s).
      expect(await recoveredAfter(0)).toBeLessThan(700);
      expect(await recoveredAfter(1)).toBeGreaterThanOrEqual(1400);
      // Up for longer than healthyAfterMs: the streak is forgiven.
      await new Promise((r) => setTimeout(r, 350)); // the behaviour under test is how long it stayed up
      expect(await recoveredAfter(2)).toBeLessThan(700);
    } finally {
      await broker.close();
    }
  });
});

/** A fake broker that refuses confirm.select with 540 NOT_IMPLEMENTED while `refuse()` says so. */
function confirmRefusingBroker(refuse: () => boolean): Promise<FakeAmqpServer> {
  return FakeAmqpServer.start(async (peer) => {
    await peer.handshake();
    peer.autoReply([], (m) => {
      if (m.method.name !== 'confirm.select' || !refuse()) return false;
      peer.send(m.channel, 'channel.close', {
        replyCode: 540,
        replyText: 'NOT_IMPLEMENTED',
        classId: 85,
        methodId: 10,
      });
      return true;
    });
  });
}

describe('AmqpSession lifecycle: setup steps', () => {
  it('a publisher channel refused confirm mode: failFast connect() rejects at once naming the step and the reply code', async () => {
    const broker = await confirmRefusingBroker(() => true);
    try {
      const s = session({ url: broker.url(), failFast: true });
      const err = await s.connect().then(
        () => new Error('connected'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(SetupError);
      expect(err.message).toMatch(/publisher channel/);
      expect((err as SetupError).replyCode).toBe(540);
    } finally {
      await broker.close();
    }
  });

  it('without failFast a refused confirm mode is retried with backoff, reported by setupFailed, and whenReady names it', async () => {
    let accepting = false;
    const broker = await confirmRefusingBroker(() => !accepting);
    try {
      const s = session({ url: broker.url(), pool: { size: 1 }, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
      const failures: string[] = [];
      const third = new Promise<void>((resolve) =>
        s.on('setupFailed', (f) => {
          failures.push(`${f.entity} #${f.attempt}: ${f.error.message}`);
          if (f.attempt === 3) resolve();
        }),
      );
      void s.connect().catch(() => undefined);
      await third;
      expect(failures[0]).toMatch(/^publisher channel 1 of 1 #1: .*540/);
      const err = await s.whenReady(100).then(
        () => new Error('ready'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.message).toMatch(/publisher channel 1 of 1: .*540/);
      accepting = true; // the broker accepts from now on
      await s.whenReady(5000);
    } finally {
      await broker.close();
    }
  });

  it('a confirm.select never answered times out (operationTimeout) and is retried: connect() settles under failFast', async () => {
    const broker = await FakeAmqpServer.start(async (peer) => {
      await peer.handshake();
      peer.autoReply([], (m) => m.method.name === 'confirm.select');
    });
    try {
      const s = session({ url: broker.url(), failFast: true, operationTimeout: 0.2 });
      const err = await s.connect().then(
        () => new Error('connected'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(SetupError);
      expect(err.cause).toBeInstanceOf(TimeoutError);
      expect(err.message).toMatch(/publisher channel .*confirm\.select/);
    } finally {
      await broker.close();
    }
  });
});

describe('AmqpSession lifecycle: consumers', () => {
  it('a consumer whose channel the broker closes while consuming (406 acknowledgement timeout) comes back on a new channel', async () => {
    const consumes: Array<{ channel: number; tag: string }> = [];
    const broker = await healthyBroker((peer) => {
      peer.autoReply([], (m) => {
        if (m.method.name !== 'basic.consume') return false;
        const tag = `ctag-${consumes.length + 1}`;
        consumes.push({ channel: m.channel, tag });
        peer.send(m.channel, 'basic.consume-ok', { consumerTag: tag });
        return true;
      });
    });
    try {
      const s = session({ url: broker.url(), connections: 'single' });
      await s.connect();
      const bodies: string[] = [];
      const got = new Promise<void>((resolve) =>
        s.consume('work', (m) => {
          bodies.push(m.body.toString());
          m.ack();
          if (m.body.toString() === 'after') resolve();
        }),
      );
      await waitUntil(() => consumes.length === 1);
      const peer = await broker.peer(0);
      const first = consumes[0];
      peer.send(first.channel, 'channel.close', {
        replyCode: 406,
        replyText: 'PRECONDITION_FAILED - delivery acknowledgement on channel timed out',
        classId: 0,
        methodId: 0,
      });
      await waitUntil(() => consumes.length === 2);
      const second = consumes[1];
      peer.deliver(
        second.channel,
        { consumerTag: second.tag, deliveryTag: 1, redelivered: true, exchange: '', routingKey: 'work' },
        Buffer.from('after'),
      );
      await got;
      expect(bodies).toEqual(['after']);
    } finally {
      await broker.close();
    }
  });
});

/** Polls a condition of the fake broker's own bookkeeping (no event to wait on there). */
async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('AmqpSession lifecycle: publishing', () => {
  it('a confirm the broker never sends rejects the publish with TimeoutError after confirmTimeoutMs, without sending it again', async () => {
    const broker = await healthyBroker((peer) => {
      peer.ackPublishes = false; // this broker takes publishes and never confirms them
    });
    try {
      const s = session({ url: broker.url(), connections: 'single', confirmTimeoutMs: 200 });
      await s.connect();
      const started = Date.now();
      const err = await s.publish('', 'q', 'lost confirm').then(
        () => new Error('confirmed'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect((await broker.peer(0)).count('basic.publish')).toBe(1);
    } finally {
      await broker.close();
    }
  });
});

describe('AmqpSession lifecycle: options and closing', () => {
  it('an unknown session option, top level or nested, is a ConfigError naming it', () => {
    expect(() => new AmqpSession({ urll: 'amqp://x' } as unknown as SessionOptions)).toThrow(ConfigError);
    expect(() => new AmqpSession({ urll: 'amqp://x' } as unknown as SessionOptions)).toThrow(/^urll:/);
    expect(() => new AmqpSession({ reconnect: { maxDelay: 5 } } as unknown as SessionOptions)).toThrow(
      /^reconnect\.maxDelay:/,
    );
    expect(() => new AmqpSession({ pool: { size: 0 } })).toThrow(/^pool\.size:/);
  });

  it('close() during a connect in progress aborts it: no socket, timer or listener of the session remains', async () => {
    // A peer that accepts TCP and never says a word: the handshake would wait handshake_timeout (20 s).
    const accepted: net.Socket[] = [];
    let bothIn: () => void = () => undefined;
    const both = new Promise<void>((r) => (bothIn = r));
    const silent = net.createServer((sock) => {
      sock.resume(); // read (and drop) what the client sends, so its hang-up is seen
      accepted.push(sock);
      if (accepted.length === 2) bothIn(); // the publisher and the consumer connection
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const leftovers = await watchLeftovers();
      const s = new AmqpSession({ url: `amqp://127.0.0.1:${port}`, logger: recordingLogger() });
      const connecting = s.connect().catch((e: Error) => e);
      await both;
      const listenersBefore = process.listenerCount('exit');
      await s.close();
      expect(await connecting).toBeInstanceOf(Error);
      // The server side sees the client go, then lets go of its own end.
      await Promise.all(accepted.map((sock) => (sock.destroyed ? undefined : once(sock, 'close'))));
      await leftovers.expectNone();
      expect(process.listenerCount('exit')).toBe(listenersBefore);
    } finally {
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('after close() of a connected session nothing of it remains (no 30 s timer, no socket)', async () => {
    const broker = await healthyBroker();
    try {
      const leftovers = await watchLeftovers();
      const s = new AmqpSession({ url: broker.url(), logger: recordingLogger(), heartbeat: 0 });
      await s.connect();
      await s.publish('', 'q', 'x');
      await s.close();
      await Promise.all(broker.peers.map((p) => p.clientGone()));
      await leftovers.expectNone();
    } finally {
      await broker.close();
    }
  });
});
