import * as net from 'node:net';
import { AmqpConnection, AmqpSession, BufferOverflowError, type SessionOptions } from '../../lib';
import type { MethodName } from '../../lib/amqp/protocol/spec.generated';
import { FakeAmqpServer, type FakePeer } from '../support/fake-amqp-server';
import { silentLogger } from '../support/leftovers';

/**
 * README claims about AmqpSession (Recovery semantics, publishBuffer, flow control) proved against the
 * scripted fake server, which records the order of what the client sends.
 */
jest.setTimeout(20_000);

const servers: FakeAmqpServer[] = [];
const sessions: AmqpSession[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const s of sessions.splice(0)) await s.close({ timeoutMs: 1000 }).catch(() => undefined);
  for (const s of servers.splice(0)) await s.close();
});

/** A fake broker: handshake, RabbitMQ-like replies, acks every publish; `gate(index)` may hold a connection's handshake. */
async function broker(gate?: (index: number) => Promise<void>): Promise<FakeAmqpServer> {
  const s = await FakeAmqpServer.start(async (peer, index) => {
    await gate?.(index);
    await peer.handshake();
    peer.ackPublishes = true;
    peer.autoReply();
  });
  servers.push(s);
  return s;
}

function session(options: SessionOptions): AmqpSession {
  const s = new AmqpSession({ logger: silentLogger, heartbeat: 0, connections: 'single', ...options });
  sessions.push(s);
  return s;
}

/** The names of the methods the client sent on `peer`, in order, from `from` on. */
function sent(peer: FakePeer, from = 0): MethodName[] {
  return peer.received.slice(from).map((r) => r.method.name);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Recovery semantics (README): what is replayed, and in which order', () => {
  it('replays exchanges → queues → bindings (queue and exchange-to-exchange), then consumers and buffered publishes', async () => {
    const secondConnection = deferred();
    const server = await broker(async (index) => {
      if (index === 1) await secondConnection.promise;
    });
    const s = session({ url: server.url() });
    await s.connect();
    await s.exchangeDeclare('src', 'topic', { durable: false });
    await s.exchangeDeclare('dst', 'fanout', { durable: false });
    await s.queueDeclare('q', { durable: false });
    await s.queueBind('q', 'dst', '');
    await s.exchangeBind('dst', 'src', 'a.#');
    await s.consume('q', async () => undefined);

    const first = await server.peer(0);
    const roles = new Set<string>();
    const recovered = new Promise<void>((resolve) =>
      s.on('recovered', (role) => {
        roles.add(role);
        if (roles.size === 2) resolve();
      }),
    );
    first.destroy();
    const second = server.peer(1);
    // While the link is down: this publish is buffered and must go out only after everything else.
    await new Promise<void>((resolve) => s.once('disconnected', () => resolve()));
    const buffered = s.publish('src', 'a.b', Buffer.from('buffered'));
    secondConnection.resolve();
    const peer = await second;
    await recovered;
    await buffered;

    const order = sent(peer).filter((m) =>
      ['exchange.declare', 'queue.declare', 'queue.bind', 'exchange.bind', 'basic.consume', 'basic.publish'].includes(
        m,
      ),
    );
    const topology = ['exchange.declare', 'exchange.declare', 'queue.declare', 'queue.bind', 'exchange.bind'];
    expect(order.slice(0, topology.length)).toEqual(topology);
    // Consumers and buffered publishes both come after the whole topology. (Between the two there is no
    // order on one shared connection: the publisher side waits for the topology, not for the consumers.)
    expect(order.slice(topology.length).sort()).toEqual(['basic.consume', 'basic.publish']);
    const e2e = peer.received.find((r) => r.method.name === 'exchange.bind');
    expect(e2e?.method.args).toMatchObject({ destination: 'dst', source: 'src', routingKey: 'a.#' });
  });

  it('a reconnect cycles through every URL: the first one down, the session recovers on the second', async () => {
    let aRefuses = false;
    const a = await FakeAmqpServer.start(async (peer) => {
      if (aRefuses) {
        peer.destroy();
        return;
      }
      await peer.handshake();
      peer.ackPublishes = true;
      peer.autoReply();
    });
    servers.push(a);
    const b = await broker();
    const s = session({ url: [a.url(), b.url()], reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    await s.connect();
    expect(a.connectionCount).toBe(1);
    expect(b.connectionCount).toBe(0);

    aRefuses = true;
    const recovered = new Promise<void>((resolve) => s.once('recovered', () => resolve()));
    (await a.peer(0)).destroy();
    await recovered;
    expect(a.connectionCount).toBe(2); // tried first, in the given order, and refused
    expect(b.connectionCount).toBe(1); // then the next URL of the round
    await s.publish('', 'q', Buffer.from('on b'));
    expect((await b.peer(0)).count('basic.publish')).toBe(1);
  });
});

describe('publishBuffer.maxBytes (README): the outage buffer is bounded in bytes', () => {
  it('a publish that would take the buffered bytes past maxBytes rejects with BufferOverflowError; those within it wait', async () => {
    const never = deferred();
    const server = await broker(async (index) => {
      if (index > 0) await never.promise; // the broker does not come back during the test
    });
    const s = session({ url: server.url(), publishBuffer: { maxBytes: 1000 } });
    await s.connect();
    const down = new Promise<void>((resolve) => s.once('disconnected', () => resolve()));
    (await server.peer(0)).destroy();
    await down;

    const first = s.publish('', 'q', Buffer.alloc(600));
    const firstSettled = jest.fn();
    first.then(firstSettled, firstSettled);
    await expect(s.publish('', 'q', Buffer.alloc(600))).rejects.toBeInstanceOf(BufferOverflowError);
    expect(firstSettled).not.toHaveBeenCalled(); // the one within the bound is still waiting for the broker
    never.resolve();
    await first;
  });
});

describe('flow control (README): blocked / unblocked reach the session', () => {
  it('connection.blocked and connection.unblocked from the broker are emitted by the session with its role', async () => {
    const server = await broker();
    const s = session({ url: server.url(), connections: 'split' });
    await s.connect();
    const events: string[] = [];
    s.on('blocked', (role, reason) => events.push(`blocked ${role} ${reason}`));
    const unblocked = new Promise<void>((resolve) =>
      s.on('unblocked', (role) => {
        events.push(`unblocked ${role}`);
        if (events.filter((e) => e.startsWith('unblocked')).length === 2) resolve();
      }),
    );
    for (const peer of server.peers) peer.send(0, 'connection.blocked', { reason: 'low on memory' });
    for (const peer of server.peers) peer.send(0, 'connection.unblocked', {});
    await unblocked;
    expect(events.sort()).toEqual([
      'blocked consumer low on memory',
      'blocked publisher low on memory',
      'unblocked consumer',
      'unblocked publisher',
    ]);
  });
});

describe('closing (README): outstanding confirms settle on close', () => {
  it('close() waits for a publish whose confirm is still outstanding: it resolves with the late ack, then the connection closes', async () => {
    const server = await FakeAmqpServer.start(async (peer) => {
      await peer.handshake();
      peer.autoReply(); // no ackPublishes: the confirm is the test's to send
    });
    servers.push(server);
    const s = session({ url: server.url() });
    await s.connect();
    const peer = await server.peer(0);
    const publishSeen = new Promise<number>((resolve) =>
      peer.autoReply([], (m) => {
        if (m.method.name === 'basic.publish') resolve(m.channel);
      }),
    );
    const publish = s.publish('', 'q', Buffer.from('x'));
    const channel = await publishSeen;
    const closing = s.close();
    // The confirm comes after close() was called, before the connection is closed.
    peer.send(channel, 'basic.ack', { deliveryTag: 1, multiple: false });
    await expect(publish).resolves.toBeUndefined();
    await closing;
    const names = sent(peer);
    expect(names.indexOf('connection.close')).toBeGreaterThan(names.indexOf('basic.publish'));
  });
});

describe('socket options (README): keep_alive', () => {
  it.each([
    ['default', '', true],
    ['keep_alive=false', 'keep_alive=false', false],
  ])('%s sets TCP keepalive on the socket accordingly', async (_, query, expected) => {
    const server = await broker();
    const spy = jest.spyOn(net.Socket.prototype, 'setKeepAlive');
    const conn = await AmqpConnection.connect({ url: server.url(query), logger: silentLogger });
    await conn.close();
    expect(spy).toHaveBeenCalledWith(expected, expect.any(Number));
  });
});
