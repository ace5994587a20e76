import { once } from 'node:events';
import * as net from 'node:net';
import { inspect } from 'node:util';
import {
  AmqpConnection,
  AuthenticationError,
  ClosedError,
  ConnectionError,
  ConnectionLostError,
  TimeoutError,
  VhostError,
  type AmqpError,
} from '../../lib';
import { resolveConnectionOptions } from '../../lib/amqp/url';
import {
  amqpUrl,
  brokerAddress,
  closeConnectionsWhere,
  listConnections,
  rabbitmqctl,
  uniqueName,
  waitFor,
} from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';

jest.setTimeout(30_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Broker-side view of one connection (negotiated values as the broker sees them). */
async function brokerSideOf(
  connectionName: string,
): Promise<{ timeout: number; frameMax: number; channelMax: number }> {
  return waitFor(
    async () => {
      const out = await rabbitmqctl([
        'list_connections',
        'timeout',
        'frame_max',
        'channel_max',
        'client_properties',
        '--formatter',
        'json',
      ]);
      const rows = JSON.parse(out.trim() || '[]') as Array<Record<string, unknown>>;
      const row = rows.find((r) => JSON.stringify(r.client_properties).includes(connectionName));
      if (!row) return undefined;
      return { timeout: Number(row.timeout), frameMax: Number(row.frame_max), channelMax: Number(row.channel_max) };
    },
    15_000,
    `connection ${connectionName} to be listed`,
  );
}

/** A TCP port on 127.0.0.1 that nobody listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function connectError(input: Parameters<typeof AmqpConnection.connect>[0]): Promise<Error> {
  try {
    const conn = await AmqpConnection.connect(input);
    await conn.close();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the connection to fail');
}

describe('AmqpConnection: connecting', () => {
  const open: AmqpConnection[] = [];
  const { host, port } = brokerAddress();

  const track = (conn: AmqpConnection): AmqpConnection => {
    open.push(conn);
    return conn;
  };

  afterEach(async () => {
    for (const conn of open.splice(0)) await conn.close().catch(() => undefined);
    jest.restoreAllMocks();
  });

  it('connects by URL and works', async () => {
    const conn = track(await AmqpConnection.connect(amqpUrl()));
    expect(conn.isOpen).toBe(true);
    const ch = await conn.channel();
    const q = await ch.queueDeclare('', { exclusive: true });
    expect(q.queue).toMatch(/^amq\.gen-/);
    await ch.close();
  });

  it('connects by options object and the broker sees the object fields', async () => {
    const name = uniqueName('client-connect-object');
    const conn = track(
      await AmqpConnection.connect({
        host,
        port,
        username: 'guest',
        password: 'guest',
        vhost: '/',
        heartbeat: 9,
        connectionName: name,
        clientProperties: { custom_prop: 'yes' },
      }),
    );
    expect(conn.endpoint.host).toBe(host);
    expect(conn.endpoint.port).toBe(port);
    expect(conn.heartbeat).toBe(9);
    const listed = await waitFor(
      async () => (await listConnections()).find((c) => c.clientName === name),
      15_000,
      `connection ${name}`,
    );
    expect(listed.user).toBe('guest');
    expect(listed.clientProperties.custom_prop).toBe('yes');
    expect(listed.clientProperties.product).toBe('nestjs-warren');
    expect((await brokerSideOf(name)).timeout).toBe(9);
  });

  it('exposes the server properties and capabilities', async () => {
    const conn = track(await AmqpConnection.connect(amqpUrl()));
    expect(conn.serverProperties.product).toBe('RabbitMQ');
    expect(typeof conn.serverProperties.version).toBe('string');
    expect(String(conn.serverProperties.version)).toMatch(/^\d+\.\d+\.\d+/);
    expect(conn.serverProperties.cluster_name).toEqual(expect.any(String));
    const caps = conn.serverCapabilities;
    expect(caps.publisher_confirms).toBe(true);
    expect(caps.consumer_cancel_notify).toBe(true);
    expect(caps.exchange_exchange_bindings).toBe(true);
    expect(caps['basic.nack']).toBe(true);
    expect(caps['connection.blocked']).toBe(true);
  });

  it('negotiates heartbeat, frame_max and channel_max from the URL (and the broker agrees)', async () => {
    const name = uniqueName('client-connect-tune');
    const conn = track(
      await AmqpConnection.connect(`${amqpUrl()}?heartbeat=7&frame_max=16384&channel_max=10&connection_name=${name}`),
    );
    expect(conn.heartbeat).toBe(7);
    expect(conn.frameMax).toBe(16384);
    expect(conn.channelMax).toBe(10);
    expect(await brokerSideOf(name)).toEqual({ timeout: 7, frameMax: 16384, channelMax: 10 });

    // A body larger than frame_max must be split: the broker would close the connection on an oversized frame.
    const ch = await conn.channel();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const body = Buffer.alloc(100_000, 7);
    await ch.confirmSelect();
    await ch.publish('', queue, body);
    const got = await ch.get(queue, { noAck: true });
    expect(got?.body.equals(body)).toBe(true);
  });

  it("takes the broker's limits where we set none (channel_max 0 means no limit; frame_max is the smaller of the two)", async () => {
    // The broker's own configured limits, whatever its version or config (not one version's defaults).
    const out = await rabbitmqctl([
      'eval',
      '[element(2, application:get_env(rabbit, K)) || K <- [channel_max, frame_max]].',
    ]);
    const [channelMax, frameMax] = JSON.parse(out.trim()) as [number, number];
    const name = uniqueName('client-connect-defaults');
    const conn = track(await AmqpConnection.connect(`${amqpUrl()}?channel_max=0&connection_name=${name}`));
    const ours = resolveConnectionOptions(amqpUrl()).frameMax;
    expect(conn.channelMax).toBe(channelMax);
    expect(conn.frameMax).toBe(Math.min(ours, frameMax));
    expect(await brokerSideOf(name)).toMatchObject({ channelMax, frameMax: conn.frameMax });
  });

  it('heartbeat=0 disables heartbeats', async () => {
    const name = uniqueName('client-connect-nohb');
    const conn = track(await AmqpConnection.connect(`${amqpUrl()}?heartbeat=0&connection_name=${name}`));
    expect(conn.heartbeat).toBe(0);
    expect((await brokerSideOf(name)).timeout).toBe(0);
  });

  it('numbers channels from 1, reuses a closed channel number, and refuses to go beyond channel_max', async () => {
    const conn = track(await AmqpConnection.connect(`${amqpUrl()}?channel_max=10`));
    const channels = [];
    for (let i = 0; i < 10; i++) channels.push(await conn.channel());
    expect(channels.map((c) => c.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    const err = await conn.channel().then(
      () => new Error('an 11th channel opened'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).replyCode).toBe(506);
    expect(err.message).toMatch(/channel_max/);
    expect(err.message).toMatch(/10/);
    // That refusal is local: the connection is fine.
    expect(conn.isOpen).toBe(true);

    await channels[3].close();
    await channels[6].close();
    const again = await conn.channel();
    expect(again.id).toBe(4);
    const again2 = await conn.channel();
    expect(again2.id).toBe(7);
    // The reused channels really work.
    const q = await again2.queueDeclare('', { exclusive: true });
    expect(q.queue).toMatch(/^amq\.gen-/);
    await expect(conn.channel()).rejects.toBeInstanceOf(ConnectionError);
  });

  it('wrong password: AuthenticationError 403, once and fast, never retried', async () => {
    const proxy = new TcpProxy({ host, port });
    await proxy.start();
    let connections = 0;
    proxy.on('connection', () => connections++);
    try {
      const started = Date.now();
      const err = await connectError({
        url: proxy.url('guest', 'not-the-password', 'connection_attempts=3&retry_delay=5'),
        logger: silentLogger,
      });
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(AuthenticationError);
      expect((err as AuthenticationError).replyCode).toBe(403);
      expect((err as AuthenticationError).replyText).toMatch(/ACCESS_REFUSED/);
      expect(elapsed).toBeLessThan(2000);
      expect(connections).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('unknown vhost: VhostError, not retried', async () => {
    const proxy = new TcpProxy({ host, port });
    await proxy.start();
    let connections = 0;
    proxy.on('connection', () => connections++);
    try {
      const vhost = uniqueName('no-such-vhost');
      const started = Date.now();
      const err = await connectError({
        url: `amqp://guest:guest@127.0.0.1:${proxy.port}/${vhost}?connection_attempts=3&retry_delay=5`,
        logger: silentLogger,
      });
      expect(err).toBeInstanceOf(VhostError);
      expect(err).not.toBeInstanceOf(AuthenticationError);
      expect([402, 530]).toContain((err as VhostError).replyCode);
      expect(err.message).toContain(vhost);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(connections).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('a closed port fails with a clear ConnectionLostError naming the endpoint', async () => {
    const dead = await deadPort();
    const err = await connectError({ url: `amqp://guest:guest@127.0.0.1:${dead}`, logger: silentLogger });
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err.message).toContain(`127.0.0.1:${dead}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('retries a closed port connection_attempts times, retry_delay apart', async () => {
    const dead = await deadPort();
    const started = Date.now();
    const err = await connectError({
      url: `amqp://guest:guest@127.0.0.1:${dead}?connection_attempts=3&retry_delay=0.2`,
      logger: silentLogger,
    });
    expect(err).toBeInstanceOf(ConnectionLostError);
    // Two delays between three rounds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('with several URLs, skips a dead first one and connects to the second', async () => {
    const dead = await deadPort();
    const conn = track(
      await AmqpConnection.connect({
        url: [`amqp://guest:guest@127.0.0.1:${dead}`, amqpUrl()],
        logger: silentLogger,
      }),
    );
    expect(conn.endpoint.port).toBe(port);
    const ch = await conn.channel();
    await ch.queueDeclare('', { exclusive: true });
  });

  describe('never reveals the password', () => {
    const user = uniqueName('warren-user');
    const password = `Pw${uniqueName('secret').replace(/-/g, '')}`;

    beforeAll(async () => {
      await rabbitmqctl(['add_user', user, password]);
      await rabbitmqctl(['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
    });
    afterAll(async () => {
      await closeConnectionsWhere((c) => c.user === user).catch(() => undefined);
      await rabbitmqctl(['delete_user', user]);
    });

    const expectNoPassword = (text: string, secret: string): void => {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(encodeURIComponent(secret));
    };
    const expectErrorClean = (err: Error, secret: string): void => {
      expectNoPassword(err.message, secret);
      expectNoPassword(String(err.stack), secret);
      expectNoPassword(inspect(err, { depth: 10 }), secret);
      expectNoPassword(JSON.stringify(err), secret);
    };

    it('not in util.inspect(conn), its options or its endpoint', async () => {
      const conn = track(await AmqpConnection.connect(`amqp://${user}:${password}@${host}:${port}`));
      expect(inspect(conn)).toContain(user);
      expectNoPassword(inspect(conn), password);
      expectNoPassword(inspect(conn, { depth: null, showHidden: true }), password);
      expectNoPassword(inspect(conn.options, { depth: null }), password);
      expectNoPassword(inspect(conn.endpoint, { depth: null, showHidden: true }), password);
      expectNoPassword(JSON.stringify(conn.options), password);
      expectNoPassword(String(conn), password);
    });

    it('not in authentication, vhost, connect or handshake-timeout errors', async () => {
      const wrong = `${password}Wrong`;
      const auth = await connectError({ url: `amqp://${user}:${wrong}@${host}:${port}`, logger: silentLogger });
      expect(auth).toBeInstanceOf(AuthenticationError);
      expectErrorClean(auth, wrong);

      const vhost = await connectError({
        url: `amqp://${user}:${password}@${host}:${port}/${uniqueName('nope')}`,
        logger: silentLogger,
      });
      expect(vhost).toBeInstanceOf(VhostError);
      expectErrorClean(vhost, password);

      const dead = await deadPort();
      const refused = await connectError({ url: `amqp://${user}:${password}@127.0.0.1:${dead}`, logger: silentLogger });
      expect(refused).toBeInstanceOf(ConnectionLostError);
      expectErrorClean(refused, password);

      const proxy = new TcpProxy({ host, port });
      await proxy.start();
      proxy.stall();
      try {
        const timeout = await connectError({
          url: `amqp://${user}:${password}@127.0.0.1:${proxy.port}?handshake_timeout=0.3`,
          logger: silentLogger,
        });
        expect(timeout).toBeInstanceOf(TimeoutError);
        expect((timeout as TimeoutError).operation).toBe('handshake');
        expectErrorClean(timeout, password);
      } finally {
        await proxy.close();
      }
    });

    it('not in the error of a broker-closed connection', async () => {
      const name = uniqueName('client-connect-pwclose');
      const conn = track(
        await AmqpConnection.connect({ url: `amqp://${user}:${password}@${host}:${port}`, connectionName: name }),
      );
      const closed = once(conn, 'close') as Promise<[AmqpError | undefined]>;
      await waitFor(async () => (await listConnections()).some((c) => c.clientName === name), 15_000, name);
      await closeConnectionsWhere((c) => c.clientName === name, 'bye');
      const [err] = await closed;
      expect(err).toBeInstanceOf(ConnectionError);
      expectErrorClean(err as Error, password);
    });
  });

  describe('TCP_NODELAY', () => {
    it('is on by default', async () => {
      const spy = jest.spyOn(net.Socket.prototype, 'setNoDelay');
      const conn = track(await AmqpConnection.connect(amqpUrl()));
      expect(spy).toHaveBeenCalledWith(true);
      expect(spy).not.toHaveBeenCalledWith(false);
      expect(conn.isOpen).toBe(true);
    });

    it('is off with no_delay=false', async () => {
      const spy = jest.spyOn(net.Socket.prototype, 'setNoDelay');
      const conn = track(await AmqpConnection.connect(`${amqpUrl()}?no_delay=false`));
      expect(spy).toHaveBeenCalledWith(false);
      expect(spy).not.toHaveBeenCalledWith(true);
      expect(conn.isOpen).toBe(true);
    });

    it('is off with noDelay: false in an options object', async () => {
      const spy = jest.spyOn(net.Socket.prototype, 'setNoDelay');
      track(await AmqpConnection.connect({ url: amqpUrl(), noDelay: false }));
      expect(spy).toHaveBeenCalledWith(false);
      expect(spy).not.toHaveBeenCalledWith(true);
    });
  });

  it('rabbitmqctl close_connection: "close" with ConnectionError 320 and the reason', async () => {
    const name = uniqueName('client-connect-forced');
    const conn = track(await AmqpConnection.connect({ url: amqpUrl(), connectionName: name, logger: silentLogger }));
    const ch = await conn.channel();
    const chClosed = once(ch, 'close') as Promise<[AmqpError | undefined]>;
    const closed = once(conn, 'close') as Promise<[AmqpError | undefined]>;
    await waitFor(async () => (await listConnections()).some((c) => c.clientName === name), 15_000, name);
    const reason = `forced by test ${uniqueName('r')}`;
    const targets = await closeConnectionsWhere((c) => c.clientName === name, reason);
    expect(targets).toHaveLength(1);

    const [err] = await closed;
    expect(err).toBeInstanceOf(ConnectionError);
    const ce = err as ConnectionError;
    expect(ce.replyCode).toBe(320);
    expect(ce.replyText).toContain('CONNECTION_FORCED');
    expect(ce.replyText).toContain(reason);
    expect(ce.message).toContain(reason);
    expect(conn.isOpen).toBe(false);
    expect(conn.closeReason).toBe(err);
    // Channels end with the connection's reason; later calls fail with it.
    const [chErr] = await chClosed;
    expect(chErr).toBe(err);
    await expect(ch.queueDeclare('', { exclusive: true })).rejects.toBe(err);
    await expect(conn.channel()).rejects.toBe(err);
    // close() after the broker closed is a no-op.
    await conn.close();
  });

  it('updateSecret(): connection.update-secret is answered and the connection carries on', async () => {
    const conn = track(await AmqpConnection.connect(amqpUrl()));
    await conn.updateSecret('guest', 'rotation by test');
    const ch = await conn.channel();
    expect((await ch.queueDeclare('', { exclusive: true })).queue).toMatch(/^amq\.gen-/);
  });

  it('updateSecret() pending when the connection drops rejects with the connection error at once', async () => {
    const proxy = new TcpProxy({ host, port });
    await proxy.start();
    try {
      const conn = track(
        await AmqpConnection.connect({
          url: proxy.url('guest', 'guest', 'heartbeat=0&operation_timeout=20'),
          logger: silentLogger,
        }),
      );
      const closed = once(conn, 'close') as Promise<[AmqpError | undefined]>;
      proxy.stall();
      const held = once(proxy, 'held');
      const pending = conn.updateSecret('guest', 'never answered').then(
        () => new Error('update-secret resolved'),
        (e: unknown) => e as Error,
      );
      await held;
      const cutAt = Date.now();
      proxy.cut();
      const [err] = await closed;
      expect(err).toBeInstanceOf(ConnectionLostError);
      expect(await pending).toBe(err);
      expect(Date.now() - cutAt).toBeLessThan(2000);
    } finally {
      await proxy.close();
    }
  });

  it('graceful close(): a pending declare settles first, then close resolves and "close" emits undefined', async () => {
    const conn = await AmqpConnection.connect(amqpUrl());
    const ch = await conn.channel();
    const order: string[] = [];
    const closeEvents: Array<AmqpError | undefined> = [];
    conn.on('close', (err) => {
      order.push('close-event');
      closeEvents.push(err);
    });
    const name = uniqueName('client-connect-graceful');
    const declared = ch.queueDeclare(name, { autoDelete: false, durable: false }).then((r) => {
      order.push('declared');
      return r;
    });
    const closing = conn.close().then(() => order.push('closed'));
    expect(conn.isOpen).toBe(false);
    // A second close() shares the first.
    const again = conn.close();
    const r = await declared;
    await closing;
    await again;
    expect(r.queue).toBe(name);
    expect(order).toEqual(['declared', 'close-event', 'closed']);
    expect(closeEvents).toEqual([undefined]);
    expect(conn.closeReason).toBeUndefined();
    await expect(conn.channel()).rejects.toBeInstanceOf(ClosedError);
    await expect(ch.queueDeclare(name, { passive: true })).rejects.toBeInstanceOf(ClosedError);

    // The declare really reached the broker.
    const check = await AmqpConnection.connect(amqpUrl());
    try {
      const cch = await check.channel();
      await cch.queueDeclare(name, { passive: true });
      await cch.queueDelete(name);
    } finally {
      await check.close();
    }
  });
});
