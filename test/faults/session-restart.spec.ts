import {
  AmqpSession,
  ConnectionError,
  ConnectionLostError,
  type AmqpError,
  type SessionMessage,
  type SessionRole,
} from '../../lib';
import { brokerAddress, deleteQueue, rabbitmqctl, startApp, stopApp, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';

// Stops the broker application (rabbitmqctl stop_app) for a few seconds: every other client of the broker is cut
// off meanwhile, so this is the only test that does it, the window is kept short, and start_app always runs.
// Run serially: npx jest --selectProjects faults --runInBand test/faults/session-restart.spec.ts

jest.setTimeout(180_000);

const TOTAL = 10_000;
const MAX_IN_FLIGHT = 200;
/** How long the application stays stopped before start_app (start_app itself adds its boot time). */
const HOLD_DOWN_MS = 1000;

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

describe('AmqpSession across a broker restart (stop_app / start_app)', () => {
  let stopped = false;

  afterAll(async () => {
    // Belt and braces: the app must be running whatever happened in the test.
    if (stopped) await startApp();
  });

  it('10 000 confirmed persistent publishes to a durable queue survive the restart: none rejected, none lost', async () => {
    // Through a TCP proxy only to time the outage: the proxy holds the traffic while stop_app runs, so the broker
    // goes down with the whole publish window unconfirmed and deliveries unacked, whenever the command lands.
    const proxy = new TcpProxy(brokerAddress());
    await proxy.start();
    const name = uniqueName('warren-restart');
    const logger = recordingLogger();
    const session = new AmqpSession({ url: proxy.url(), connectionName: name, logger });
    const queue = uniqueName('session-restart-q');
    let outage: Promise<void> = Promise.resolve();
    try {
      const events = new EventLog(session);
      await session.connect();
      await session.queueDeclare(queue, { durable: true });
      const tally = new Tally();
      const handler = jest.fn(tally.handler);
      await session.consume(queue, handler, { prefetch: 100 });

      const publisherUp = events.next('recovered', 'publisher');
      const consumerUp = events.next('recovered', 'consumer');
      const progress = { inFlight: 0, issued: 0 };
      const atLoss: Partial<Record<SessionRole, { inFlight: number; issued: number; unackedHeld: number }>> = {};
      session.on('disconnected', (role) => {
        atLoss[role] ??= { ...progress, unackedHeld: tally.held.length };
      });
      const timing = { stopMs: 0, heldMs: 0, startMs: 0, stoppedAt: 0, upAt: 0 };
      const t0 = Date.now();
      const result = await publishAll(
        session,
        queue,
        TOTAL,
        MAX_IN_FLIGHT,
        async (i) => {
          if (i !== 2000) return;
          tally.hold();
          await tally.heldAtLeast(50);
          proxy.stall();
          stopped = true;
          outage = (async () => {
            try {
              const a = Date.now();
              await stopApp();
              timing.stoppedAt = Date.now();
              timing.stopMs = timing.stoppedAt - a;
              proxy.resume(); // the session learns of the loss now; the broker stays down a little longer
              await new Promise((r) => setTimeout(r, HOLD_DOWN_MS));
              timing.heldMs = Date.now() - timing.stoppedAt;
            } finally {
              proxy.resume();
              const c = Date.now();
              await startApp();
              stopped = false;
              timing.upAt = Date.now();
              timing.startMs = timing.upAt - c;
            }
          })();
        },
        progress,
      );
      await outage;
      await Promise.all([publisherUp, consumerUp]);
      const publishedMs = Date.now() - t0;
      // Acks for deliveries of the connection that died: dropped (the broker redelivers those messages).
      tally.releaseHeld();

      expect(result.rejected).toEqual([]);
      expect(result.confirmed).toBe(TOTAL);
      expect(atLoss.publisher?.inFlight).toBe(MAX_IN_FLIGHT);
      expect(atLoss.consumer?.unackedHeld).toBeGreaterThanOrEqual(50);
      await tally.uniqueAtLeast(TOTAL);
      const consumedMs = Date.now() - t0;
      expect(tally.ids.size).toBe(TOTAL);
      expect(Math.min(...tally.ids)).toBe(0);
      expect(Math.max(...tally.ids)).toBe(TOTAL - 1);
      expect(tally.redelivered).toBeGreaterThanOrEqual(atLoss.consumer?.unackedHeld ?? Infinity);
      expect(handler).toHaveBeenCalledTimes(tally.deliveries);
      // A recoverable loss: connection.close 320 (shutdown), or the socket dropped (the proxy discards what it held).
      for (const role of ['publisher', 'consumer'] as const) {
        const cause = events.last('disconnected', role)?.cause;
        expect(cause instanceof ConnectionError || cause instanceof ConnectionLostError).toBe(true);
      }
      expect(events.count('recoveryFailed')).toBe(0);
      expect(logger.lines.filter((l) => /channel closed/.test(l))).toEqual([]);
      await waitFor(async () => {
        const c = await queueCounts(queue);
        return c !== undefined && c.ready === 0 && c.unacked === 0;
      });
      const down = events.last('disconnected', 'publisher')?.at ?? NaN;
      const up = events.last('recovered', 'publisher')?.at ?? NaN;
      console.log(
        `session-restart: ${TOTAL} published in ${publishedMs} ms, all consumed after ${consumedMs} ms; ` +
          `${tally.deliveries} deliveries (${tally.deliveries - TOTAL} duplicates, ${tally.redelivered} redelivered); ` +
          `stop_app ${timing.stopMs} ms, held down ${timing.heldMs} ms, start_app ${timing.startMs} ms ` +
          `(broker application down ~${timing.upAt - timing.stoppedAt} ms); publisher recovered ${up - down} ms after its loss ` +
          `and ${up - timing.upAt} ms after start_app returned, consumer recovery ${events.recoveryMs('consumer')} ms ` +
          `(${events.count('reconnecting')} reconnect attempts); at the losses: ${JSON.stringify(atLoss)}`,
      );
    } finally {
      await outage.catch(() => undefined);
      proxy.resume();
      await session.close().catch(() => undefined);
      await proxy.close();
      await deleteQueue(queue).catch(() => undefined);
    }
  });
});
