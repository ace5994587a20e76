import { AmqpSession } from '../../lib';
import { withTimeout } from '../../lib/amqp/deferred';
import { uniqueName } from '../support/broker';
import { startCluster, type Cluster } from '../support/cluster';
import type { ExtraNode } from '../support/rabbitmq-nodes';
import { EventLog, recordingLogger, Tally } from '../support/session-workload';

// A session given all three nodes of a cluster (test/support/cluster.ts, ports 5701-5703) fails over when the node
// it is on stops (rabbitmqctl stop_app), twice, while a quorum queue holds the work: nothing confirmed is lost.
// Run: bash scripts/broker-lock.sh npx jest --selectProjects nodes --runInBand test/nodes/cluster-failover.spec.ts

jest.setTimeout(180_000);

/** 20 000 confirmed in ~7 s here (2 shared cores), both faults included. */
const TOTAL = 20_000;
const MAX_IN_FLIGHT = 200;

/** Confirmed publishes with their confirm times, so the first confirm after a fault can be found. */
class ConfirmClock {
  readonly confirmed = new Set<number>();
  /** Date.now() of every confirm, in order. */
  readonly times: number[] = [];
  readonly rejected: Error[] = [];
  private readonly waiters: Array<() => void> = [];

  confirm(i: number): void {
    this.confirmed.add(i);
    this.times.push(Date.now());
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves on the next confirm. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The first confirm at or after `t`, if any yet. */
  firstAt(t: number): number | undefined {
    return this.times.find((x) => x >= t);
  }
}

/** Publish bodies '0'..'total-1' (persistent) with at most `maxInFlight` unconfirmed; `at(i)` runs before publish i. */
async function publishAll(
  session: AmqpSession,
  queue: string,
  total: number,
  clock: ConfirmClock,
  at: (i: number) => Promise<void> | void,
): Promise<void> {
  let inFlight = 0;
  let slot: (() => void) | null = null;
  let allDone: (() => void) | null = null;
  const settled = (): void => {
    inFlight--;
    slot?.();
    slot = null;
    if (inFlight === 0) allDone?.();
  };
  for (let i = 0; i < total; i++) {
    await at(i);
    while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => (slot = resolve));
    inFlight++;
    session.publish('', queue, String(i), { persistent: true, messageId: String(i) }).then(
      () => {
        clock.confirm(i);
        settled();
      },
      (err: Error) => {
        clock.rejected.push(err);
        settled();
      },
    );
  }
  if (inFlight > 0) await new Promise<void>((resolve) => (allDone = resolve));
}

describe('a session on a three-node cluster', () => {
  let cluster: Cluster;
  let bootMs = 0;

  beforeAll(async () => {
    const t = Date.now();
    cluster = await startCluster();
    bootMs = Date.now() - t;
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);

  it('fails over twice (stop_app of the node it is on, then of the node it moved to): every confirmed message of a quorum queue is consumed, the consumer resumes', async () => {
    const name = uniqueName('warren-failover');
    const logger = recordingLogger();
    const session = new AmqpSession({ url: cluster.urls, connectionName: name, logger });
    const queue = uniqueName('failover-qq');
    const stopped = new Set<ExtraNode>();
    const faults: Array<{
      node: string;
      movedTo?: string;
      stopAppMs: number;
      toFirstConfirmMs: number;
      fromLossToConfirmMs: number;
    }> = [];
    let outage: Promise<void> = Promise.resolve();
    try {
      const events = new EventLog(session);
      await session.connect();
      await session.queueDeclare(queue, { type: 'quorum' });
      const tally = new Tally();
      await session.consume(queue, tally.handler, { prefetch: 100 });
      const clock = new ConfirmClock();
      const deliveriesAtRecovery: number[] = [];
      session.on('recovered', (role) => role === 'consumer' && deliveriesAtRecovery.push(tally.deliveries));

      /**
       * Stop the publisher's node, wait for the first confirm after the loss, see where the session went, start the
       * node again. `lost` resolves once the publisher has lost its connection.
       */
      const fault = (): { lost: Promise<number>; done: Promise<void> } => {
        const lost = events.next('disconnected', 'publisher').then(() => Date.now());
        const consumerUp = events.next('recovered', 'consumer');
        const publisherUp = events.next('recovered', 'publisher');
        const done = (async () => {
          const node = await cluster.nodeOf(`${name}:publisher`);
          if (!node) throw new Error('publisher connection not found on any node');
          stopped.add(node);
          const t0 = Date.now();
          await cluster.stopApp(node);
          const stopAppMs = Date.now() - t0;
          const lossAt = await lost;
          await Promise.all([publisherUp, consumerUp]);
          // The first confirm after the loss comes on the connection to another node.
          while (clock.firstAt(lossAt) === undefined) await clock.next();
          const confirmedAt = clock.firstAt(lossAt) ?? NaN;
          const movedTo = await cluster.nodeOf(`${name}:publisher`);
          faults.push({
            node: node.name,
            movedTo: movedTo?.name,
            stopAppMs,
            toFirstConfirmMs: confirmedAt - t0,
            fromLossToConfirmMs: confirmedAt - lossAt,
          });
          await cluster.startApp(node);
          stopped.delete(node);
        })();
        return { lost, done };
      };

      const t0 = Date.now();
      let current: ReturnType<typeof fault> | null = null;
      await publishAll(session, queue, TOTAL, clock, async (i) => {
        // Publishing outruns stop_app: once a fault is under way, hold the publisher until the loss, so that
        // thousands of publishes are still to go while the node is down and the session fails over.
        if (i === Math.floor(TOTAL / 4) || i === Math.floor(TOTAL / 2) + 1) {
          // The second fault only once the first node is back: two of three nodes stay up (the quorum).
          await outage;
          current = fault();
          outage = current.done;
        }
        if (current && (i === Math.floor(TOTAL / 4) + 1000 || i === Math.floor(TOTAL / 2) + 1001)) await current.lost;
      });
      await outage;
      const publishedMs = Date.now() - t0;

      expect(clock.rejected).toEqual([]);
      expect(clock.confirmed.size).toBe(TOTAL);
      // Bounded, so that a loss shows as the missing ids rather than as a test timeout.
      await withTimeout(tally.uniqueAtLeast(TOTAL), 60_000, 'consume').catch(() => undefined);
      const consumedMs = Date.now() - t0;
      const lost = [...clock.confirmed].filter((i) => !tally.ids.has(i));
      if (lost.length > 0) {
        const where = await cluster.nodes[0]?.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged']);
        console.log(
          `cluster-failover: ${lost.length} lost (first ${lost.slice(0, 20).join(',')}); faults ${JSON.stringify(faults)}; queues: ${where}; log: ${logger.lines.slice(0, 20).join(' | ')}`,
        );
      }
      expect(lost).toEqual([]);
      expect(faults).toHaveLength(2);
      for (const f of faults) {
        expect(f.movedTo).toBeDefined();
        expect(f.movedTo).not.toBe(f.node);
      }
      // The second fault stopped the node the session had moved to.
      expect(faults[1]?.node).toBe(faults[0]?.movedTo);
      // The consumer resumed after each recovery: deliveries kept coming after the last one.
      expect(deliveriesAtRecovery).toHaveLength(2);
      expect(tally.deliveries).toBeGreaterThan(deliveriesAtRecovery[1] ?? Infinity);
      expect(events.count('recoveryFailed')).toBe(0);
      console.log(
        `cluster-failover: cluster up in ${bootMs} ms; ${TOTAL} confirmed in ${publishedMs} ms, all consumed after ${consumedMs} ms, ` +
          `0 lost, ${tally.deliveries - tally.ids.size} duplicates (${tally.redelivered} redelivered); faults: ` +
          faults
            .map(
              (f) =>
                `${f.node} stopped (stop_app ${f.stopAppMs} ms) -> ${f.movedTo}, first confirm ${f.toFirstConfirmMs} ms after stop_app began ` +
                `(${f.fromLossToConfirmMs} ms after the loss)`,
            )
            .join('; '),
      );
    } finally {
      await outage.catch(() => undefined);
      for (const node of stopped) await cluster.startApp(node).catch(() => undefined);
      await session.queueDelete(queue).catch(() => undefined);
      await session.close().catch(() => undefined);
    }
  });
});
