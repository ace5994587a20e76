import {
  AmqpSession,
  ConnectionError,
  ConnectionLostError,
  HeartbeatTimeoutError,
  type AmqpError,
  type SessionMessage,
  type SessionRole,
} from '../../lib';
import { brokerAddress, closeConnectionsWhere, deleteQueue, rabbitmqctl, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';

// Fault tests: they force-close this file's own connections (by client-provided name) and cut proxied sockets.
// Run serially: npx jest --selectProjects faults --runInBand test/faults/session-kill.spec.ts

jest.setTimeout(120_000);

const TOTAL = 10_000;
const MAX_IN_FLIGHT = 200;

function recordingLogger(): {
  lines: string[];
  debug: () => void;
  warn: (m: string) => void;
  error: (m: string) => void;
} {
  const lines: string[] = [];
  return {
    lines,
    debug: () => undefined,
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}

/** rabbitmqctl close_connection on the connection with this client-provided name. */
async function killConnection(clientName: string): Promise<void> {
  await waitFor(
    async () => (await closeConnectionsWhere((c) => c.clientName === clientName, 'fault test')).length > 0,
    10_000,
    `connection ${clientName} to be closed`,
  );
}

async function queueCounts(queue: string): Promise<{ ready: number; unacked: number } | undefined> {
  const out = await rabbitmqctl([
    'list_queues',
    'name',
    'messages_ready',
    'messages_unacknowledged',
    '--formatter',
    'json',
  ]);
  const rows = JSON.parse(out.trim() || '[]') as Array<Record<string, unknown>>;
  const row = rows.find((r) => r.name === queue);
  return row ? { ready: Number(row.messages_ready), unacked: Number(row.messages_unacknowledged) } : undefined;
}

/** Timestamps of every session event, per role, to wait on and to measure recovery with. */
class EventLog {
  readonly entries: Array<{ at: number; event: string; role?: SessionRole; cause?: AmqpError }> = [];
  private waiters: Array<{ pred: (e: EventLog['entries'][number]) => boolean; resolve: () => void }> = [];

  constructor(session: AmqpSession) {
    for (const event of ['connected', 'recovered'] as const) session.on(event, (role) => this.push({ event, role }));
    session.on('disconnected', (role, cause) => this.push({ event: 'disconnected', role, cause }));
    session.on('reconnecting', (role) => this.push({ event: 'reconnecting', role }));
    session.on('recoveryFailed', (role) => this.push({ event: 'recoveryFailed', role }));
  }

  /** Resolves on the first matching event from now on. */
  next(event: string, role: SessionRole): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ pred: (e) => e.event === event && e.role === role, resolve }));
  }

  last(event: string, role: SessionRole): EventLog['entries'][number] | undefined {
    return [...this.entries].reverse().find((e) => e.event === event && e.role === role);
  }

  /** ms from the last `disconnected` to the `recovered` that followed it, for this role. */
  recoveryMs(role: SessionRole): number {
    const down = this.last('disconnected', role);
    const up = this.last('recovered', role);
    if (!down || !up || up.at < down.at) return NaN;
    return up.at - down.at;
  }

  count(event: string, role?: SessionRole): number {
    return this.entries.filter((e) => e.event === event && (role === undefined || e.role === role)).length;
  }

  private push(e: Omit<EventLog['entries'][number], 'at'>): void {
    const entry = { ...e, at: Date.now() };
    this.entries.push(entry);
    for (const w of this.waiters.filter((x) => x.pred(entry))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

/** What a manual-ack consumer saw: unique message ids, total deliveries, and calls after a given moment. */
class Tally {
  readonly ids = new Set<number>();
  deliveries = 0;
  redelivered = 0;
  callsAfterMark = 0;
  /** Deliveries whose ack is held back (see hold()). */
  readonly held: SessionMessage[] = [];
  private marked = false;
  private holding = false;
  private waiters: Array<{ done: () => boolean; resolve: () => void }> = [];

  readonly handler = (m: SessionMessage): void => {
    this.deliveries++;
    if (m.fields.redelivered) this.redelivered++;
    if (this.marked) this.callsAfterMark++;
    this.ids.add(Number(m.body.toString()));
    if (this.holding) this.held.push(m);
    // Ack a little later, as real handlers do.
    else setTimeout(() => m.ack(), 2);
    for (const w of this.waiters.filter((x) => x.done())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  };

  /** From now on, count handler calls separately. */
  mark(): void {
    this.marked = true;
  }

  /** Stop acking: deliveries pile up unacked (up to the prefetch) until releaseHeld(). */
  hold(): void {
    this.holding = true;
  }

  /** Ack every held delivery now, and ack normally again. */
  releaseHeld(): void {
    this.holding = false;
    for (const m of this.held.splice(0)) m.ack();
  }

  uniqueAtLeast(n: number): Promise<void> {
    return this.until(() => this.ids.size >= n);
  }

  heldAtLeast(n: number): Promise<void> {
    return this.until(() => this.held.length >= n);
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }
}

/**
 * Publish `total` persistent messages (bodies '0'..'total-1') with at most `maxInFlight` unconfirmed;
 * `at(i)` runs before publish i is issued (it may wait, holding the publisher back).
 */
async function publishAll(
  session: AmqpSession,
  queue: string,
  total: number,
  maxInFlight: number,
  at: (i: number) => Promise<void> | void,
  progress: { inFlight: number; issued: number } = { inFlight: 0, issued: 0 },
): Promise<{ confirmed: number; rejected: Error[] }> {
  let inFlight = 0;
  let confirmed = 0;
  const rejected: Error[] = [];
  let slot: (() => void) | null = null;
  let allDone: (() => void) | null = null;
  const settled = (): void => {
    inFlight--;
    progress.inFlight = inFlight;
    slot?.();
    slot = null;
    if (inFlight === 0) allDone?.();
  };
  for (let i = 0; i < total; i++) {
    await at(i);
    while (inFlight >= maxInFlight) await new Promise<void>((resolve) => (slot = resolve));
    inFlight++;
    progress.inFlight = inFlight;
    progress.issued = i + 1;
    session.publish('', queue, String(i), { persistent: true, messageId: String(i) }).then(
      () => {
        confirmed++;
        settled();
      },
      (err: Error) => {
        rejected.push(err);
        settled();
      },
    );
  }
  if (inFlight > 0) await new Promise<void>((resolve) => (allDone = resolve));
  return { confirmed, rejected };
}

describe('AmqpSession under connection kills (rabbitmqctl close_connection)', () => {
  const sessions: AmqpSession[] = [];
  const queues: string[] = [];

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close().catch(() => undefined)));
  });

  afterAll(async () => {
    for (const q of queues) await deleteQueue(q).catch(() => undefined);
  });

  it('10 000 confirmed publishes survive a killed publisher and a killed consumer connection: none rejected, none lost', async () => {
    // The session reaches the broker through a TCP proxy only to time the kills: the proxy holds the traffic for
    // the second or so that rabbitmqctl takes, so each connection dies with work outstanding (publishes unconfirmed,
    // deliveries unacked) instead of whenever the command happens to land.
    const proxy = new TcpProxy(brokerAddress());
    await proxy.start();
    const name = uniqueName('warren-kill');
    const logger = recordingLogger();
    const session = new AmqpSession({ url: proxy.url(), connectionName: name, logger });
    sessions.push(session);
    try {
      const events = new EventLog(session);
      await session.connect();
      const queue = uniqueName('session-kill-q');
      queues.push(queue);
      await session.queueDeclare(queue, { durable: true });
      const tally = new Tally();
      const handler = jest.fn(tally.handler);
      const consumer = await session.consume(queue, handler, { prefetch: 100 });
      const firstTag = consumer.consumerTag;

      const publisherUp = events.next('recovered', 'publisher');
      const consumerDown = events.next('disconnected', 'consumer');
      const consumerUp = events.next('recovered', 'consumer');
      // What the publisher had going at the moment each connection died.
      const progress = { inFlight: 0, issued: 0 };
      const atLoss: Partial<Record<SessionRole, { inFlight: number; issued: number; unackedHeld: number }>> = {};
      session.on('disconnected', (role) => {
        atLoss[role] ??= { ...progress, unackedHeld: tally.held.length };
      });
      let publisherKill: Promise<void> = Promise.resolve();
      const t0 = Date.now();
      const result = await publishAll(
        session,
        queue,
        TOTAL,
        MAX_IN_FLIGHT,
        async (i) => {
          if (i === 2000) {
            // Publishing goes on into the stalled proxy until 200 are unconfirmed; then the connection dies.
            proxy.stall();
            publisherKill = killConnection(`${name}:publisher`).finally(() => proxy.resume());
          }
          if (i === 6000) {
            await publisherUp;
            // The consumer stops acking; once 50 deliveries are unacked its connection dies.
            tally.hold();
            await tally.heldAtLeast(50);
            proxy.stall();
            await killConnection(`${name}:consumer`).finally(() => proxy.resume());
            await consumerDown;
            await consumerUp;
            tally.mark();
            // Acks for the dead channel's deliveries: dropped, never sent on the new channel (the broker redelivers).
            tally.releaseHeld();
          }
        },
        progress,
      );
      await publisherKill;
      const publishedMs = Date.now() - t0;

      expect(result.rejected).toEqual([]);
      expect(result.confirmed).toBe(TOTAL);
      // The publisher connection died with the whole window unconfirmed: all of it was re-published.
      expect(atLoss.publisher?.inFlight).toBe(MAX_IN_FLIGHT);
      expect(atLoss.consumer?.unackedHeld).toBeGreaterThanOrEqual(50);
      await tally.uniqueAtLeast(TOTAL);
      const consumedMs = Date.now() - t0;
      expect(tally.ids.size).toBe(TOTAL);
      expect(Math.min(...tally.ids)).toBe(0);
      expect(Math.max(...tally.ids)).toBe(TOTAL - 1);
      // Unacked deliveries came back, to the same handler re-attached on the new consumer connection.
      expect(tally.redelivered).toBeGreaterThanOrEqual(atLoss.consumer?.unackedHeld ?? Infinity);
      expect(tally.callsAfterMark).toBeGreaterThan(0);
      expect(handler).toHaveBeenCalledTimes(tally.deliveries);
      expect(consumer.consumerTag).not.toBe(firstTag);
      // The stale acks caused no channel error on the new channel.
      expect(logger.lines.filter((l) => /channel closed/.test(l))).toEqual([]);

      expect(events.last('disconnected', 'publisher')?.cause).toBeInstanceOf(ConnectionError);
      expect(events.last('disconnected', 'consumer')?.cause).toBeInstanceOf(ConnectionError);
      expect(events.count('recoveryFailed')).toBe(0);
      expect(events.count('disconnected')).toBe(2);
      await waitFor(async () => {
        const c = await queueCounts(queue);
        return c !== undefined && c.ready === 0 && c.unacked === 0;
      });

      console.log(
        `session-kill: ${TOTAL} published in ${publishedMs} ms, all consumed after ${consumedMs} ms; ` +
          `${tally.deliveries} deliveries (${tally.deliveries - TOTAL} duplicates, ${tally.redelivered} redelivered); ` +
          `publisher recovery ${events.recoveryMs('publisher')} ms, consumer recovery ${events.recoveryMs('consumer')} ms; ` +
          `at the losses: ${JSON.stringify(atLoss)}`,
      );
    } finally {
      proxy.resume();
      await session.close().catch(() => undefined);
      await proxy.close();
    }
  });

  describe('through a TCP proxy', () => {
    let proxy: TcpProxy;

    beforeEach(async () => {
      proxy = new TcpProxy(brokerAddress());
      await proxy.start();
    });

    afterEach(async () => {
      proxy.resume();
      await Promise.all(sessions.splice(0).map((s) => s.close().catch(() => undefined)));
      await proxy.close();
    });

    async function proxiedSession(): Promise<{ session: AmqpSession; events: EventLog; queue: string }> {
      const session = new AmqpSession({
        url: proxy.url('guest', 'guest', 'heartbeat=1'),
        connectionName: uniqueName('warren-proxied'),
        logger: recordingLogger(),
      });
      sessions.push(session);
      const events = new EventLog(session);
      await session.connect();
      const queue = uniqueName('session-proxy-q');
      queues.push(queue);
      await session.queueDeclare(queue, { durable: false });
      return { session, events, queue };
    }

    async function drain(session: AmqpSession, queue: string): Promise<string[]> {
      const bodies: string[] = [];
      for (;;) {
        const m = await session.get(queue, { noAck: true });
        if (!m) return bodies;
        bodies.push(m.body.toString());
      }
    }

    it('stall: missed heartbeats end both connections (HeartbeatTimeoutError); after resume() the session recovers and publishing resumes', async () => {
      const { session, events, queue } = await proxiedSession();
      await session.publish('', queue, 'before');

      const downs = Promise.all([events.next('disconnected', 'publisher'), events.next('disconnected', 'consumer')]);
      const ups = Promise.all([events.next('recovered', 'publisher'), events.next('recovered', 'consumer')]);
      const stalledAt = Date.now();
      proxy.stall();
      // Its frames are held by the proxy: no confirm until the session has re-published it.
      const during = session.publish('', queue, 'during the stall');
      await downs;
      const detectedMs = Date.now() - stalledAt;
      expect(events.last('disconnected', 'publisher')?.cause).toBeInstanceOf(HeartbeatTimeoutError);
      expect(events.last('disconnected', 'consumer')?.cause).toBeInstanceOf(HeartbeatTimeoutError);
      // heartbeat 1 s: dead after 2 s of silence (4 ticks of 500 ms), not before.
      expect(detectedMs).toBeGreaterThanOrEqual(1500);

      const resumedAt = Date.now();
      proxy.resume();
      await ups;
      const recoveredMs = Date.now() - resumedAt;
      await during;
      await session.publish('', queue, 'after');
      const bodies = await drain(session, queue);
      expect(bodies[0]).toBe('before');
      expect(bodies).toContain('during the stall');
      expect(bodies[bodies.length - 1]).toBe('after');
      console.log(
        `session-kill stall: heartbeat loss detected after ${detectedMs} ms; recovered ${recoveredMs} ms after resume()`,
      );
    });

    it('cut: both connections come back at once, and publishing carries on', async () => {
      const { session, events, queue } = await proxiedSession();
      const downs = Promise.all([events.next('disconnected', 'publisher'), events.next('disconnected', 'consumer')]);
      const ups = Promise.all([events.next('recovered', 'publisher'), events.next('recovered', 'consumer')]);
      const cutAt = Date.now();
      proxy.cut();
      await downs;
      expect(events.last('disconnected', 'publisher')?.cause).toBeInstanceOf(ConnectionLostError);
      expect(events.last('disconnected', 'consumer')?.cause).toBeInstanceOf(ConnectionLostError);
      await ups;
      const recoveredMs = Date.now() - cutAt;
      expect(recoveredMs).toBeLessThan(2000);
      expect(events.count('reconnecting')).toBe(0); // the first reconnect attempt succeeded
      await session.publish('', queue, 'after the cut');
      expect(await drain(session, queue)).toEqual(['after the cut']);
      console.log(`session-kill cut: recovered ${recoveredMs} ms after the cut`);
    });
  });
});
