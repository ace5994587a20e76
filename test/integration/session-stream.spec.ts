import { AmqpSession, ConfigError, type SessionMessage, type StreamOffset } from '../../lib/amqp';
import { rabbitmqctl, uniqueName } from '../support/broker';
import { deferred } from '../support/nest-support';

/**
 * Stream queues through AmqpSession: declared with their shorthands, consumed from 'first', from an
 * offset, from a timestamp, and resumed from an offset store; every delivery carries its offset.
 */
jest.setTimeout(60_000);

const COUNT = 10_000;
const silent = { warn: () => undefined, error: () => undefined };

let session: AmqpSession;
let stream: string;

/** Publishes bodies `from`..`to - 1` (their index as text), confirmed, at most 500 in flight. */
async function publishRange(queue: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 500) {
    const batch: Array<Promise<void>> = [];
    for (let i = start; i < Math.min(to, start + 500); i++) batch.push(session.publish('', queue, String(i)));
    await Promise.all(batch);
  }
}

/** Consumes `queue` from `offset` until `count` messages arrived; returns their (offset, body) pairs. */
async function consumeFrom(
  queue: string,
  offset: StreamOffset,
  count: number,
): Promise<Array<{ offset: number | undefined; body: number }>> {
  const seen: Array<{ offset: number | undefined; body: number }> = [];
  const done = deferred<void>();
  const consumer = await session.consume(
    queue,
    (m: SessionMessage) => {
      m.ack();
      // Deliveries already on their way when the cancel goes out are not counted.
      if (seen.length === count) return;
      seen.push({ offset: m.streamOffset, body: Number(m.body.toString()) });
      if (seen.length === count) done.resolve();
    },
    { offset, prefetch: 500 },
  );
  await done.promise;
  await consumer.cancel();
  return seen;
}

beforeAll(async () => {
  session = new AmqpSession({ logger: silent });
  await session.connect();
  stream = uniqueName('warren-stream');
  await session.queueDeclare(stream, {
    type: 'stream',
    maxAge: '1h',
    maxLengthBytes: 100_000_000,
    streamMaxSegmentSizeBytes: 10_000_000,
  });
  await publishRange(stream, 0, COUNT);
});

afterAll(async () => {
  await session.queueDelete(stream).catch(() => undefined);
  await session.close();
});

describe('stream queues (AmqpSession)', () => {
  it('are declared with the stream shorthands as their x- arguments', async () => {
    const out = await rabbitmqctl(['list_queues', 'name', 'type', 'arguments', '--quiet', '--no-table-headers']);
    const row = out.split('\n').find((line) => line.startsWith(`${stream}\t`));
    expect(row).toContain('stream');
    expect(row).toContain('{"x-max-age","1h"}');
    expect(row).toContain('{"x-stream-max-segment-size-bytes",10000000}');
    expect(row).toContain('{"x-max-length-bytes",100000000}');
  });

  // (Publishes spread over the pool's channels, so the stream's order is not the bodies' order.)
  it("offset 'first' delivers the whole stream in offset order, each message with its offset", async () => {
    const seen = await consumeFrom(stream, 'first', COUNT);
    expect(seen.map((s) => s.offset)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(seen.map((s) => s.body).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });

  it('a numeric offset starts at that message', async () => {
    const seen = await consumeFrom(stream, 5000, 100);
    expect(seen.map((s) => s.offset)).toEqual(Array.from({ length: 100 }, (_, i) => 5000 + i));
  });

  it('a Date starts at the first message written at or after it (to the second)', async () => {
    const queue = uniqueName('warren-stream-ts');
    await session.queueDeclare(queue, { type: 'stream' });
    try {
      await publishRange(queue, 0, 50);
      // Timestamps go to the broker in whole seconds: start the second batch in a second of its own.
      const boundary = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
      await new Promise((resolve) => setTimeout(resolve, boundary.getTime() - Date.now() + 20));
      await publishRange(queue, 50, 100);
      const seen = await consumeFrom(queue, boundary, 50);
      expect(seen.map((s) => s.body).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => 50 + i));
      expect(seen[0]?.offset).toBe(50);
    } finally {
      await session.queueDelete(queue);
    }
  });

  it("an offset store's saved position is resumed from, and each advance is saved", async () => {
    const saved: number[] = [];
    const done = deferred<void>();
    const offsets: Array<number | undefined> = [];
    const consumer = await session.consume(
      stream,
      (m) => {
        m.ack();
        if (offsets.length === COUNT - 5000) return;
        offsets.push(m.streamOffset);
        if (offsets.length === COUNT - 5000) done.resolve();
      },
      { offsetStore: { load: async () => 4999, save: (offset) => void saved.push(offset) }, prefetch: 200 },
    );
    await done.promise;
    await consumer.cancel();
    expect(offsets[0]).toBe(5000);
    expect(offsets.at(-1)).toBe(COUNT - 1);
    expect(saved.at(-1)).toBe(COUNT - 1);
    // Saved in order, never backwards.
    expect([...saved].sort((a, b) => a - b)).toEqual(saved);
  });

  it('out-of-order settles move the position only past offsets whose predecessors are all settled', async () => {
    const saved: number[] = [];
    const held: SessionMessage[] = [];
    const tenArrived = deferred<void>();
    const consumer = await session.consume(
      stream,
      (m) => {
        held.push(m);
        if (held.length === 10) tenArrived.resolve();
      },
      { offset: 0, prefetch: 10, offsetStore: { load: () => undefined, save: (o) => void saved.push(o) } },
    );
    await tenArrived.promise;
    const first10 = held.slice(0, 10);
    expect(first10.map((m) => m.streamOffset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Settle 9, 8, ..., 1 first: offset 0 is still open, so nothing is processed "up to" anything yet.
    for (const m of first10.slice(1).reverse()) m.ack();
    expect(saved).toEqual([]);
    first10[0]?.ack();
    expect(saved).toEqual([9]);
    await consumer.cancel();
  });

  it('stream consumers refuse what streams cannot do, naming the option', async () => {
    const cases: Array<[object, string]> = [
      [{ offset: 'first', noAck: true }, 'noAck'],
      [{ offset: 'first', prefetch: 0 }, 'prefetch'],
      [{ offset: 'yesterday' }, 'offset'],
      [{ offset: -1 }, 'offset'],
      [{ offsetStore: { load: () => undefined } }, 'offsetStore'],
    ];
    for (const [options, field] of cases) {
      const err = await session
        .consume(stream, () => undefined, options)
        .then(
          () => undefined,
          (e: Error) => e,
        );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
    }
  });

  it('rejects a max-age that is not a RabbitMQ duration', async () => {
    await expect(session.queueDeclare(uniqueName('bad-age'), { type: 'stream', maxAge: '1 hour' })).rejects.toThrow(
      /maxAge.*duration/,
    );
  });
});
