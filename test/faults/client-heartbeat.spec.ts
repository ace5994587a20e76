import { once } from 'node:events';
import * as net from 'node:net';
import {
  AmqpConnection,
  ConnectionLostError,
  HeartbeatTimeoutError,
  TimeoutError,
  type AmqpError,
  type Channel,
} from '../../lib';
import { amqpUrl, brokerAddress, listConnections, rabbitmqctl, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';

jest.setTimeout(60_000);

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const HEARTBEAT_BYTES = Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]);

/** One macrotask turn: lets already-queued I/O callbacks and microtasks run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Tracks whether a promise has settled (without consuming its rejection). */
function track<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled, promise: p };
}

describe('heartbeats and dead peers (through a TCP proxy)', () => {
  let proxy: TcpProxy;
  const conns: AmqpConnection[] = [];

  beforeEach(async () => {
    const { host, port } = brokerAddress();
    proxy = new TcpProxy({ host, port });
    await proxy.start();
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) c.destroy();
    jest.restoreAllMocks();
    await proxy.close();
  });

  const connect = async (query: string, name = uniqueName('client-heartbeat')): Promise<AmqpConnection> => {
    const c = await AmqpConnection.connect({
      url: proxy.url('guest', 'guest', query),
      connectionName: name,
      logger: silentLogger,
    });
    conns.push(c);
    return c;
  };

  it('an idle connection with heartbeat=1 exchanges heartbeats and stays open', async () => {
    const name = uniqueName('client-heartbeat-idle');
    // Count the heartbeat frames we send (only while the connection is idle does the client send them).
    let sent = 0;
    let onSixth: () => void = () => undefined;
    const sixth = new Promise<void>((resolve) => (onSixth = resolve));
    const write = net.Socket.prototype.write;
    jest.spyOn(net.Socket.prototype, 'write').mockImplementation(function (this: net.Socket, ...args: unknown[]) {
      const [chunk] = args;
      if (Buffer.isBuffer(chunk) && chunk.equals(HEARTBEAT_BYTES) && this.remotePort === proxy.port) {
        if (++sent === 6) onSixth();
      }
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    });
    const c = await connect('heartbeat=1', name);
    expect(c.heartbeat).toBe(1);
    const closed = track(once(c, 'close'));
    const started = Date.now();
    await sixth;
    const elapsed = Date.now() - started;
    // Every heartbeat/2 while idle: 6 frames in about 3 s; the broker's heartbeats kept us from declaring it dead.
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(closed.settled()).toBe(false);
    expect(c.isOpen).toBe(true);
    const ch = await c.channel();
    expect((await ch.queueDeclare('', { exclusive: true })).queue).toMatch(/^amq\.gen-/);
    expect((await listConnections()).some((b) => b.clientName === name)).toBe(true);
  });

  it('stall(): "close" with HeartbeatTimeoutError within 2 × heartbeat (+ one tick)', async () => {
    const c = await connect('heartbeat=1');
    const ch = await c.channel();
    const chClosed = once(ch, 'close') as Promise<[AmqpError | undefined]>;
    const closed = new Promise<{ err: AmqpError | undefined; at: number }>((resolve) =>
      c.once('close', (err) => resolve({ err, at: Date.now() })),
    );
    await ch.queueDeclare('', { exclusive: true });
    const stalledAt = Date.now();
    proxy.stall();
    const inFlight = ch.queueDeclare('', { exclusive: true, timeout: 30_000 });
    const { err, at } = await closed;
    const elapsed = at - stalledAt;
    expect(err).toBeInstanceOf(HeartbeatTimeoutError);
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect((err as HeartbeatTimeoutError).heartbeatSeconds).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(4000);
    // Everything pending fails with that reason, at once.
    await expect(inFlight).rejects.toBe(err);
    const [chErr] = await chClosed;
    expect(chErr).toBe(err);
    expect(c.isOpen).toBe(false);
    expect(c.closeReason).toBe(err);
  });

  it('cut(): "close" with ConnectionLostError promptly', async () => {
    const c = await connect('heartbeat=0');
    const ch = await c.channel();
    await ch.queueDeclare('', { exclusive: true });
    const closed = new Promise<{ err: AmqpError | undefined; at: number }>((resolve) =>
      c.once('close', (err) => resolve({ err, at: Date.now() })),
    );
    const cutAt = Date.now();
    proxy.cut();
    const { err, at } = await closed;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err).not.toBeInstanceOf(HeartbeatTimeoutError);
    expect(at - cutAt).toBeLessThan(1000);
    await expect(ch.queueDeclare('', { exclusive: true })).rejects.toBe(err);
    await expect(c.channel()).rejects.toBe(err);
  });
});

describe('connection.blocked (memory alarm)', () => {
  let restoreArgs: string[] = ['0.4'];
  const conns: AmqpConnection[] = [];
  const queue = uniqueName('client-heartbeat-blocked');

  const setWatermark = (args: string[]): Promise<string> =>
    rabbitmqctl(['set_vm_memory_high_watermark', ...args], 30_000);
  const restore = async (): Promise<void> => {
    await setWatermark(restoreArgs);
  };
  const raiseAlarm = (): Promise<string> => setWatermark(['0.0000001']);

  beforeAll(async () => {
    const status = JSON.parse(await rabbitmqctl(['status', '--formatter', 'json'])) as Record<string, unknown>;
    const setting = status.vm_memory_high_watermark_setting as { relative?: number; absolute?: number } | undefined;
    if (setting?.relative !== undefined && setting.relative >= 0.1) restoreArgs = [String(setting.relative)];
    else if (setting?.absolute !== undefined) restoreArgs = ['absolute', String(setting.absolute)];
  });

  afterEach(async () => {
    await restore();
    for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  });

  afterAll(async () => {
    await restore();
    const c = await AmqpConnection.connect({ url: amqpUrl(), logger: silentLogger });
    const ch = await c.channel();
    await ch.queueDelete(queue).catch(() => undefined);
    await c.close();
    // No alarm left behind.
    await waitFor(
      async () => {
        const s = JSON.parse(await rabbitmqctl(['status', '--formatter', 'json'])) as { alarms?: unknown[] };
        return (s.alarms ?? []).length === 0;
      },
      30_000,
      'the memory alarm to clear',
    );
  });

  /** The broker's state for our connection: running, blocking (alarm on, not yet publishing), blocked... */
  const brokerState = async (name: string): Promise<string | undefined> => {
    const out = await rabbitmqctl(['list_connections', 'client_properties', 'state', '--formatter', 'json']);
    const rows = JSON.parse(out.trim() || '[]') as Array<Record<string, unknown>>;
    const row = rows.find((r) => JSON.stringify(r.client_properties).includes(name));
    return row === undefined ? undefined : String(row.state);
  };

  const open = async (query = ''): Promise<{ c: AmqpConnection; ch: Channel; name: string }> => {
    const name = uniqueName('client-heartbeat-blocked-conn');
    const c = await AmqpConnection.connect({ url: `${amqpUrl()}${query}`, connectionName: name, logger: silentLogger });
    conns.push(c);
    const ch = await c.channel();
    await ch.queueDeclare(queue, { durable: false });
    await ch.queuePurge(queue);
    return { c, ch, name };
  };

  /**
   * Raise the memory alarm and get `c` blocked. RabbitMQ puts every connection in "blocking" when the alarm fires, but
   * blocks (and sends connection.blocked to) a connection only when it next publishes: wait (broker state) until the
   * alarm has reached this connection, then publish once — that publish is sent and taken by the broker.
   */
  const getBlocked = async (c: AmqpConnection, ch: Channel, name: string): Promise<string> => {
    const blocked = once(c, 'blocked') as Promise<[string]>;
    await raiseAlarm();
    await waitFor(async () => (await brokerState(name)) === 'blocking', 30_000, `${name} to be blocking`);
    expect(c.isBlocked).toBe(false);
    await ch.publish('', queue, 'trigger');
    const [reason] = await blocked;
    return reason;
  };

  it('"blocked" holds publishes back; "unblocked" lets them through', async () => {
    const { c, ch, name } = await open();
    const unblocked = once(c, 'unblocked');
    let held: Promise<void> = Promise.reject(new Error('never published'));
    held.catch(() => undefined);
    try {
      const reason = await getBlocked(c, ch, name);
      expect(reason).toMatch(/memory/);
      expect(c.isBlocked).toBe(true);
      const send = jest.spyOn(c, 'send');
      const p = track(ch.publish('', queue, 'held back'));
      held = p.promise;
      await turn();
      await turn();
      // Not written, not settled: the publish waits for connection.unblocked.
      expect(send).not.toHaveBeenCalled();
      expect(p.settled()).toBe(false);
      expect(c.isOpen).toBe(true);
    } finally {
      await restore();
    }
    await unblocked;
    expect(c.isBlocked).toBe(false);
    await held;
    // The trigger and the held-back publish both arrive.
    expect((await ch.get(queue, { noAck: true }))?.body.toString()).toBe('trigger');
    const second = await ch.get(queue, { noAck: true });
    expect(second?.body.toString()).toBe('held back');
    expect(second?.fields.messageCount).toBe(0);
  });

  it('with blocked_connection_timeout=1 a blocked publish fails with TimeoutError', async () => {
    const { c, ch, name } = await open('?blocked_connection_timeout=1');
    expect(c.options.blockedConnectionTimeoutMs).toBe(1000);
    const unblocked = once(c, 'unblocked');
    try {
      await getBlocked(c, ch, name);
      const started = Date.now();
      const err = await ch.publish('', queue, 'too late').then(
        () => new Error('the publish went through'),
        (e: unknown) => e as Error,
      );
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).timeoutMs).toBe(1000);
      expect(err.message).toMatch(/blocked/);
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(5000);
      // Only that publish failed: the connection and channel are fine.
      expect(c.isOpen).toBe(true);
      expect(ch.isOpen).toBe(true);
    } finally {
      await restore();
    }
    await unblocked;
    await ch.publish('', queue, 'after');
    // The timed-out publish was never sent.
    expect((await ch.get(queue, { noAck: true }))?.body.toString()).toBe('trigger');
    const got = await ch.get(queue, { noAck: true });
    expect(got?.body.toString()).toBe('after');
    expect(got?.fields.messageCount).toBe(0);
  });
});
