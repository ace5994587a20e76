import { AmqpSession, type SessionMessage } from '../../lib/amqp';
import { killConnection, uniqueName } from '../support/broker';
import { deferred } from '../support/nest-support';

/**
 * Stream consumers resume, they do not replay: after the consumer's connection is killed midway, the
 * consumer re-attaches from the oldest delivery it had not settled — not from its original 'first' —
 * so nothing before the last processed offset comes again (at most the in-flight window does) and
 * nothing after it is missed.
 */
jest.setTimeout(90_000);

const COUNT = 10_000;
const PREFETCH = 100;
const silent = { warn: () => undefined, error: () => undefined };

it("a stream consumer started at 'first' resumes after its connection is killed: no replay, nothing missed", async () => {
  const connectionName = uniqueName('warren-stream-resume');
  const session = new AmqpSession({ connectionName, logger: silent, reconnect: { initialDelayMs: 10 } });
  const stream = uniqueName('warren-stream-resume');
  await session.connect();
  try {
    await session.queueDeclare(stream, { type: 'stream' });
    for (let start = 0; start < COUNT; start += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => session.publish('', stream, String(start + i))));
    }

    const seen = new Map<number, number>(); // offset → deliveries
    const afterRecovery: number[] = [];
    let recovered = false;
    let processedAtKill = -1;
    let inFlightAtKill = 0; // delivered and not settled when the connection went
    const midway = deferred<void>();
    const all = deferred<void>();
    let contiguous = -1; // every offset up to this one has been processed (acked)
    const acked = new Set<number>();
    // A third of the way in, the handler stops settling: a full prefetch window is in flight (unsettled) when
    // the connection is killed. After the loss it settles again.
    let holding = false;
    await session.consume(
      stream,
      (m: SessionMessage) => {
        const offset = m.streamOffset as number;
        seen.set(offset, (seen.get(offset) ?? 0) + 1);
        if (recovered) afterRecovery.push(offset);
        if (holding && !recovered) return; // never settled: its channel dies with it
        setImmediate(() => {
          // Only what the broker could still take counts as processed (an ack on a dead channel is dropped).
          if (!m.isLive()) return;
          m.ack();
          acked.add(offset);
          while (acked.has(contiguous + 1)) contiguous++;
          if (!recovered && contiguous >= COUNT / 3) {
            holding = true;
            midway.resolve();
          }
          if (seen.size === COUNT) all.resolve();
        });
      },
      { offset: 'first', prefetch: PREFETCH },
    );
    await midway.promise;
    // Once the old connection is gone, every delivery comes from the re-attached consumer.
    session.on('disconnected', (role) => {
      if (role !== 'consumer') return;
      recovered = true;
      processedAtKill = contiguous;
      inFlightAtKill = seen.size - acked.size;
    });
    await killConnection(`${connectionName}:consumer`);
    await all.promise;

    // Nothing missed.
    for (let offset = 0; offset < COUNT; offset++) expect(seen.has(offset)).toBe(true);
    // No replay from 'first': what came after the reconnect starts past what had been processed.
    expect(afterRecovery.length).toBeGreaterThan(0);
    expect(Math.min(...afterRecovery)).toBeGreaterThan(processedAtKill);
    const duplicates = [...seen.values()].reduce((n, times) => n + times - 1, 0);
    process.stdout.write(
      `stream resume: processed up to ${processedAtKill} at the kill, ${inFlightAtKill} in flight, ${duplicates} duplicates\n`,
    );
    // What comes twice is at most what was in flight (a stream may deliver a whole chunk past the prefetch).
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill);
  } finally {
    await session.queueDelete(stream).catch(() => undefined);
    await session.close();
  }
});
