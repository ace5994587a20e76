import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { AmqpConnection, AmqpSession, TimeoutError } from '../../lib/amqp';
import type { Endpoint } from '../../lib/amqp/options';
import { FakeAmqpServer } from '../support/fake-amqp-server';
import { silentLogger } from '../support/leftovers';

/**
 * README claims about connecting (Configuration reference, Recovery semantics): shuffling per round,
 * connection_timeout, and failed socket writes as a recovery trigger. Against local sockets and the
 * scripted fake server; no broker.
 */
jest.setTimeout(20_000);

const servers: Array<{ close(): Promise<void> | void }> = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const s of servers.splice(0)) await s.close();
});

/** Ports nothing listens on (bound once, then released): a connect there is refused at once. */
async function closedPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.push((server.address() as net.AddressInfo).port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return ports;
}

/** A TCP server that accepts and never says anything (no TLS ServerHello, no AMQP). */
async function silentServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
  return (server.address() as net.AddressInfo).port;
}

/** The ports `connectOnce` was called with, in call order. */
function recordAttempts(): number[] {
  const ports: number[] = [];
  const original = AmqpConnection.connectOnce.bind(AmqpConnection);
  jest.spyOn(AmqpConnection, 'connectOnce').mockImplementation((endpoint: Endpoint, ...rest) => {
    ports.push(endpoint.port);
    return original(endpoint, ...rest);
  });
  return ports;
}

function rounds(attempts: number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < attempts.length; i += size) out.push(attempts.slice(i, i + size));
  return out;
}

describe('shuffle (README): URLs are tried in random order, shuffled again for every round', () => {
  it('with shuffle=true every round tries each URL once, and the rounds do not all share one order', async () => {
    const ports = await closedPorts(4);
    const attempts = recordAttempts();
    const urls = ports.map((p, i) => `amqp://127.0.0.1:${p}${i === 0 ? '?shuffle=true' : ''}`);
    await expect(
      AmqpConnection.connect({ url: urls, connectionAttempts: 12, retryDelay: 0.001, logger: silentLogger }),
    ).rejects.toThrow(/ECONNREFUSED/);
    const perRound = rounds(attempts, ports.length);
    expect(perRound).toHaveLength(12);
    for (const round of perRound) expect([...round].sort()).toEqual([...ports].sort());
    // One shuffle for the whole connect would repeat one order 12 times (a 1 in 24^11 chance otherwise).
    expect(new Set(perRound.map((r) => r.join(','))).size).toBeGreaterThan(1);
  });

  it('without shuffle every round tries the URLs in the given order', async () => {
    const ports = await closedPorts(4);
    const attempts = recordAttempts();
    const urls = ports.map((p) => `amqp://127.0.0.1:${p}`);
    await expect(
      AmqpConnection.connect({ url: urls, connectionAttempts: 5, retryDelay: 0.001, logger: silentLogger }),
    ).rejects.toThrow(/ECONNREFUSED/);
    expect(rounds(attempts, ports.length)).toEqual(Array.from({ length: 5 }, () => ports));
  });
});

describe('connection_timeout (README): seconds for the TCP/TLS connect', () => {
  it('a TLS connect that gets no ServerHello fails after connection_timeout, not after handshake_timeout', async () => {
    const port = await silentServer();
    const started = Date.now();
    const err = await AmqpConnection.connect({
      url: `amqps://127.0.0.1:${port}?verify=false&connection_timeout=0.3&handshake_timeout=20`,
      logger: silentLogger,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatch(/^connecting to .* timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('the connect is bounded by handshake_timeout too when that is shorter', async () => {
    const port = await silentServer();
    const err = await AmqpConnection.connect({
      url: `amqps://127.0.0.1:${port}?verify=false&connection_timeout=20&handshake_timeout=0.25`,
      logger: silentLogger,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatch(/timed out after 250 ms/);
  });

  it('connection_timeout does not cover the AMQP handshake: a silent AMQP peer fails by handshake_timeout', async () => {
    const port = await silentServer();
    const err = await AmqpConnection.connect({
      url: `amqp://127.0.0.1:${port}?connection_timeout=0.05&handshake_timeout=0.4`,
      logger: silentLogger,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatch(/^AMQP handshake with .* timed out after 400 ms/);
  });
});

describe('failed writes (README): a socket write the kernel refuses triggers recovery', () => {
  it('a write failing with EPIPE ends the connection with that error; the session reconnects and the publish is re-sent and confirmed', async () => {
    let index = 0;
    const server = await FakeAmqpServer.start(async (peer) => {
      const mine = index++;
      await peer.handshake();
      // The first connection never confirms: the publish stays outstanding across the failure.
      peer.ackPublishes = mine > 0;
      peer.autoReply();
    });
    servers.push(server);
    const sockets: net.Socket[] = [];
    const connectOnce = AmqpConnection.connectOnce.bind(AmqpConnection);
    jest.spyOn(AmqpConnection, 'connectOnce').mockImplementation(async (...args) => {
      const conn = await connectOnce(...args);
      sockets.push((conn as unknown as { socket: net.Socket }).socket);
      return conn;
    });
    const session = new AmqpSession({
      url: server.url(),
      connections: 'single',
      heartbeat: 0,
      logger: silentLogger,
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
    });
    try {
      await session.connect();
      const first = await server.peer(0);
      const outstanding = session.publish('', 'q', Buffer.from('across the failure'));
      await first.expect('basic.publish');

      const causes: Error[] = [];
      session.on('disconnected', (_role, cause) => causes.push(cause));
      const recovered = new Promise<void>((resolve) => session.once('recovered', () => resolve()));
      // From now on the kernel refuses every write on that socket, as it does once the peer is gone.
      const handle = (sockets[0] as unknown as { _handle: Record<string, unknown> })._handle;
      const epipe = (): number => -osConstants.errno.EPIPE;
      for (const method of ['writev', 'writeBuffer', 'writeLatin1String', 'writeUtf8String']) handle[method] = epipe;
      const next = session.publish('', 'q', Buffer.from('the write that fails'));

      await recovered;
      // One connection serves both roles here ('single'): each role reports the same cause.
      expect(causes.map((c) => c.message)).toEqual([
        expect.stringMatching(/^socket error: write EPIPE/),
        expect.stringMatching(/^socket error: write EPIPE/),
      ]);
      await expect(outstanding).resolves.toBeUndefined();
      await expect(next).resolves.toBeUndefined();
      const second = await server.peer(1);
      const bodies = second.contentFrames.filter((f) => f.type === 3).map((f) => f.payload.toString());
      expect(bodies.sort()).toEqual(['across the failure', 'the write that fails']);
    } finally {
      await session.close({ timeoutMs: 1000 });
    }
  });
});
