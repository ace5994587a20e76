import { AmqpSession, ConnectionError, ConnectionLostError, type SessionRole } from '../../lib';
import { brokerAddress, deleteQueue, queueCounts, startApp, stopApp, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { EventLog, publishAll, recordingLogger, Tally } from '../support/session-workload';

// Stops the broker application (rabbitmqctl stop_app) for a few seconds: every other client of the broker is cut
// off meanwhile, so this is the only test that does it, the window is kept short, and start_app always runs.
// Run serially: npx jest --selectProjects faults --runInBand test/faults/session-restart.spec.ts

jest.setTimeout(180_000);

const TOTAL = 10_000;
const MAX_IN_FLIGHT = 200;
/** How long the application stays stopped before start_app (start_app itself adds its boot time). */
const HOLD_DOWN_MS = 1000;

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
