import { once } from 'node:events';
import {
  AmqpSession,
  BufferOverflowError,
  NackError,
  TimeoutError,
  type Logger,
  type SessionOptions,
} from '../../lib/amqp';
import { FakeBroker } from '../support/fake-broker';
import type { FakePeer } from '../support/fake-amqp-server';
import { deferred, Recorder, rejection } from '../support/nest-support';

/**
 * README, AmqpSession and Delivery guarantees: consume and publish defaults, connection names, re-published
 * messages that are then refused, and what publishBuffer.timeoutMs and its limits count — on a fake broker.
 */
jest.setTimeout(20_000);

const quiet: Logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function fakeBroker(options?: Parameters<typeof FakeBroker.start>[0]): Promise<FakeBroker> {
  const b = await FakeBroker.start(options);
  cleanups.push(() => b.close());
  return b;
}

function session(options: SessionOptions): AmqpSession {
  const s = new AmqpSession({
    heartbeat: 0,
    logger: quiet,
    connections: 'single',
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    ...options,
  });
  cleanups.push(() => s.close({ timeoutMs: 1000 }));
  return s;
}

/** A connection the fake broker accepts at the TCP level and never answers: the broker stays unreachable. */
const never = (): Promise<void> => new Promise<void>(() => undefined);

describe('AmqpSession.consume (README)', () => {
  it('consumes with prefetch 100 by default', async () => {
    const broker = await fakeBroker();
    const s = session({ url: broker.url() });
    await s.connect();
    await s.consume('q', (m) => m.ack());
    expect((await broker.consumer('q')).prefetch).toBe(100);
  });

  it('a throwing or rejecting handler is logged as an error and its message stays unacked', async () => {
    const broker = await fakeBroker();
    const errors = new Recorder<string>();
    const s = session({ url: broker.url(), logger: { ...quiet, error: (m) => errors.push(m) } });
    await s.connect();
    await s.consume('q', (m) => {
      const what = m.body.toString();
      if (what === 'throw') throw new Error('handler threw');
      if (what === 'reject') return Promise.reject(new Error('handler rejected'));
      m.ack();
      return undefined;
    });
    const consumer = await broker.consumer('q');
    const [, , ok] = await broker.deliver(consumer, [
      { routingKey: 'q', body: 'throw' },
      { routingKey: 'q', body: 'reject' },
      { routingKey: 'q', body: 'ok' },
    ]);
    await errors.waitFor(2);
    expect(errors.items.join('\n')).toContain('handler threw');
    expect(errors.items.join('\n')).toContain('handler rejected');
    // The third one's ack is the only settlement on the channel, and it does not cover the first two.
    await broker.settlement(consumer, ok);
    expect(broker.settlementsOf(consumer)).toEqual([
      expect.objectContaining({ method: 'basic.ack', deliveryTag: ok, multiple: false }),
    ]);
  });
});

describe('AmqpSession.publish and connections (README)', () => {
  it('publishes transient and not mandatory by default, with no property you did not give', async () => {
    const broker = await fakeBroker();
    const s = session({ url: broker.url() });
    await s.connect();
    await s.publish('', 'q', 'plain');
    const [m] = broker.published;
    expect(m).toMatchObject({ exchange: '', routingKey: 'q', mandatory: false });
    expect(m.properties.toJSON()).toEqual({});
    expect(m.body.toString()).toBe('plain');
  });

  it("with connections: 'single' its one connection is named <connectionName>:shared", async () => {
    const broker = await fakeBroker();
    const s = session({ url: broker.url(), name: 'billing', connections: 'single' });
    await s.connect();
    expect(broker.server.connectionCount).toBe(1);
    const [startOk] = broker.methods('connection.start-ok');
    expect(startOk.args.clientProperties.connection_name).toBe('warren:billing:shared');
  });
});

describe('Delivery guarantees (README): a rejection after a re-publish does not mean "not delivered"', () => {
  it('a publish routed, cut off before its confirm, re-sent and nacked rejects with NackError — its first copy was delivered', async () => {
    let first: FakePeer | undefined;
    const broker = await fakeBroker({
      accept: async (index, peer) => {
        if (index === 0) first = peer;
      },
    });
    broker.confirm = (m) => {
      if (m.peer === first) {
        m.peer.destroy(); // the broker had the message; the link dies before its confirm
        return 'none';
      }
      return 'nack';
    };
    const s = session({ url: broker.url() });
    await s.connect();
    const err = await rejection(s.publish('', 'q', 'once'));
    expect(err).toBeInstanceOf(NackError);
    const copies = broker.published.filter((m) => m.body.toString() === 'once');
    expect(copies).toHaveLength(2);
    expect(copies[0].peer).toBe(first);
    expect(copies[1].peer).not.toBe(first);
  });
});

describe('Delivery guarantees (README): what publishBuffer.timeoutMs counts', () => {
  const timeoutMs = 400;

  it('a publish made while the broker is down rejects with TimeoutError timeoutMs after it started waiting', async () => {
    const broker = await fakeBroker({
      accept: async (index, peer) => {
        if (index > 0) peer.destroy(); // the broker refuses every reconnect
      },
    });
    const s = session({ url: broker.url(), publishBuffer: { timeoutMs } });
    await s.connect();
    const attempts = new Recorder<number>();
    s.on('reconnecting', (_role, info) => attempts.push(info.attempt));
    broker.server.peers[0].destroy();
    // Down for a while (three failed reconnects) before the publish: that time does not count.
    await attempts.waitFor(3);
    const startedAt = Date.now();
    const err = await rejection(s.publish('', 'q', 'late'));
    const waited = Date.now() - startedAt;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(waited).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(waited).toBeLessThan(timeoutMs + 1000);
  });

  it('a publish written to a channel and taken back after a loss gets a fresh timeoutMs', async () => {
    // Connection 0: up, then cut. Connection 1: comes up timeoutMs/2 later, takes the publish, is cut before the
    // confirm. Connection 2 on: never answered.
    let second: FakePeer | undefined;
    const broker = await fakeBroker({
      accept: async (index, peer) => {
        if (index === 1) {
          await new Promise((resolve) => setTimeout(resolve, timeoutMs / 2));
          second = peer;
        }
        if (index > 1) await never();
      },
    });
    let cutAt = 0;
    broker.confirm = (m) => {
      if (m.peer !== second) return 'ack';
      cutAt = Date.now();
      m.peer.destroy();
      return 'none';
    };
    const s = session({ url: broker.url(), publishBuffer: { timeoutMs } });
    await s.connect();
    const down = once(s, 'disconnected');
    broker.server.peers[0].destroy();
    await down;
    const startedAt = Date.now();
    const err = await rejection(s.publish('', 'q', 'taken back'));
    const rejectedAt = Date.now();
    expect(err).toBeInstanceOf(TimeoutError);
    expect(broker.published.map((m) => m.peer)).toEqual([second]); // it was written to connection 1
    expect(cutAt - startedAt).toBeGreaterThanOrEqual(timeoutMs / 2 - 5);
    // Counted again from the cut, not from the first wait.
    expect(rejectedAt - cutAt).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(rejectedAt - startedAt).toBeGreaterThan(timeoutMs + timeoutMs / 4);
  });

  it('publishes taken back after a loss are never refused for space; new ones are, while the buffer is full', async () => {
    const reconnect = deferred();
    const broker = await fakeBroker({
      accept: async (index) => {
        if (index > 0) await reconnect.promise;
      },
    });
    broker.confirm = (m) => (m.peer === broker.server.peers[0] ? 'none' : 'ack'); // connection 0 confirms nothing
    const s = session({ url: broker.url(), publishBuffer: { maxMessages: 1 } });
    await s.connect();
    const inFlight = ['m1', 'm2', 'm3'].map((body) => s.publish('', 'q', body));
    await broker.publishedMessage((m) => m.body.toString() === 'm3');
    const down = once(s, 'disconnected');
    broker.server.peers[0].destroy();
    await down;

    // Three held, over maxMessages 1: a new publish is refused, the three are kept.
    expect(await rejection(s.publish('', 'q', 'new'))).toBeInstanceOf(BufferOverflowError);
    reconnect.resolve();
    await Promise.all(inFlight);
    const resent = broker.published.filter((m) => m.peer !== broker.server.peers[0]).map((m) => m.body.toString());
    expect(resent).toEqual(['m1', 'm2', 'm3']);
  });
});
