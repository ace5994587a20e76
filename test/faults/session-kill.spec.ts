import { AmqpSession, ConnectionError, ConnectionLostError, HeartbeatTimeoutError, type SessionRole } from '../../lib';
import { brokerAddress, deleteQueue, killConnection, queueCounts, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { EventLog, publishAll, recordingLogger, Tally } from '../support/session-workload';

// Fault tests: they force-close this file's own connections (by client-provided name) and cut proxied sockets.
// Run serially: npx jest --selectProjects faults --runInBand test/faults/session-kill.spec.ts

jest.setTimeout(120_000);

const TOTAL = 10_000;
const MAX_IN_FLIGHT = 200;

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
