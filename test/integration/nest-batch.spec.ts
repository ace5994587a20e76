import type { ConsumeMessage } from 'amqplib';
import { Ctx, Payload, RpcException } from '@nestjs/microservices';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import {
  AmqpBatchContext,
  AmqpController,
  AmqpEventPattern,
  DefaultDeserializer,
  parkingLotName,
  retryQueueName,
  WarrenHeaders,
  type AmqpDeserializer,
} from '../../lib/nest';
import { BrokerProbe, closeAll, deferred, Recorder, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

interface Job {
  n: number;
}

/** One call of a batch handler: its payloads, their delivery tags and attempts. */
interface BatchCall {
  ns: number[];
  tags: number[];
  attempts: number[];
}

function record(jobs: Job[], ctx: AmqpBatchContext): BatchCall {
  return {
    ns: jobs.map((j) => j.n),
    tags: ctx.getMessages().map((m) => m.fields.deliveryTag),
    attempts: ctx.getContexts().map((c) => c.getAttempt()),
  };
}

/** The basic.ack frames the client writes (every connection of this test file), as `[deliveryTag, multiple]`. */
function watchAcks(): { acks: Recorder<[tag: number, multiple: boolean]>; restore: () => void } {
  const acks = new Recorder<[number, boolean]>();
  const settle = FrameEncoder.prototype.settle;
  const spy = jest.spyOn(FrameEncoder.prototype, 'settle').mockImplementation(function (
    this: FrameEncoder,
    channel,
    methodId,
    deliveryTag,
    bits,
  ) {
    if (methodId === 80) acks.push([deliveryTag, bits === 1]);
    return settle.call(this, channel, methodId, deliveryTag, bits);
  });
  return { acks, restore: () => spy.mockRestore() };
}

/** Collects the next `n` messages of a queue through a consumer (event based). */
async function nextMessages(probe: BrokerProbe, queue: string, n: number): Promise<ConsumeMessage[]> {
  const ch = await probe.connection.createChannel();
  try {
    const got: ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume(
        queue,
        (m) => {
          if (m && got.push(m) === n) resolve();
        },
        { noAck: true },
      );
    });
    return got;
  } finally {
    await ch.close();
  }
}

/** A deserializer that reports each message it reads: the consumer has the message, before any handler runs. */
function reportingDeserializer(seen: Recorder<number>): AmqpDeserializer {
  const inner = new DefaultDeserializer();
  return {
    deserialize(body, properties) {
      const value = inner.deserialize(body, properties) as Job;
      seen.push(value.n);
      return value;
    },
  };
}

describe('batch handlers', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let wire: ReturnType<typeof watchAcks> | undefined;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    wire?.restore();
    wire = undefined;
    await closeAll(apps);
    await probe.close();
  });

  /** The broker's counters once the app's consumers are gone: what is left in the queue was never acked. */
  async function leftAfterConsumersGone(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
    const info = await probe.queueInfo(queue);
    return { messageCount: info?.messageCount ?? -1, consumerCount: info?.consumerCount ?? -1 };
  }

  /** Publishes jobs `from` … `to - 1` straight to the queue, for the handler of `pattern`. */
  async function fill(queue: string, from: number, to: number, pattern = 'job'): Promise<void> {
    for (let n = from; n < to; n++) {
      await probe.publish('', queue, { n }, { headers: { [WarrenHeaders.PATTERN]: pattern } });
    }
  }

  it('a full batch reaches the handler once size messages arrived, and is acked with one multiple ack', async () => {
    const queue = probe.queue('batch-size');
    const calls = new Recorder<BatchCall>();

    // A timeout far beyond the test's: only the size can close these batches.
    @AmqpController({ queue: { name: queue, durable: false } })
    class SizeController {
      @AmqpEventPattern('job', { batch: { size: 10, timeoutMs: 60_000 } })
      handle(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        calls.push(record(jobs, ctx));
      }
    }

    await probe.channel.assertQueue(queue, { durable: false });
    await fill(queue, 0, 30);
    wire = watchAcks();
    const { app } = await startMicroservice({ controllers: [SizeController] });
    apps.push(app);
    await calls.waitFor(3);
    await app.close();

    expect(calls.items.map((c) => c.ns)).toEqual([0, 10, 20].map((s) => Array.from({ length: 10 }, (_, i) => s + i)));
    // The prefetch was raised to the batch size: each batch is the channel's only unacked deliveries.
    expect(wire.acks.items).toEqual([
      [10, true],
      [20, true],
      [30, true],
    ]);
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('a partial batch reaches the handler timeoutMs after its first message', async () => {
    const queue = probe.queue('batch-time');
    const calls = new Recorder<BatchCall & { at: number }>();

    @AmqpController({ queue: { name: queue, durable: false } })
    class TimeController {
      @AmqpEventPattern('job', { batch: { size: 10, timeoutMs: 300 } })
      handle(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        calls.push({ ...record(jobs, ctx), at: Date.now() });
      }
    }

    await probe.channel.assertQueue(queue, { durable: false });
    await fill(queue, 0, 3);
    wire = watchAcks();
    const started = Date.now();
    const { app } = await startMicroservice({ controllers: [TimeController] });
    apps.push(app);
    const [call] = await calls.waitFor(1);
    await app.close();

    expect(calls.items).toHaveLength(1);
    expect(call.ns).toEqual([0, 1, 2]);
    expect(call.at - started).toBeGreaterThanOrEqual(300);
    expect(wire.acks.items).toEqual([[3, true]]);
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('a batch holds the messages of one handler only; each batch is acked', async () => {
    const queue = probe.queue('batch-patterns');
    const calls = new Recorder<{ handler: string; ns: number[] }>();

    @AmqpController({ queue: { name: queue, durable: false } })
    class PatternsController {
      @AmqpEventPattern('job.a', { batch: { size: 3, timeoutMs: 60_000 } })
      a(@Payload() jobs: Job[]) {
        calls.push({ handler: 'a', ns: jobs.map((j) => j.n) });
      }

      @AmqpEventPattern('job.b', { batch: { size: 3, timeoutMs: 60_000 } })
      b(@Payload() jobs: Job[]) {
        calls.push({ handler: 'b', ns: jobs.map((j) => j.n) });
      }
    }

    await probe.channel.assertQueue(queue, { durable: false });
    for (let n = 0; n < 6; n++) await fill(queue, n, n + 1, n % 2 === 0 ? 'job.a' : 'job.b');
    const { app } = await startMicroservice({ controllers: [PatternsController] });
    apps.push(app);
    await calls.waitFor(2);
    await app.close();

    expect(calls.items).toEqual(
      expect.arrayContaining([
        { handler: 'a', ns: [0, 2, 4] },
        { handler: 'b', ns: [1, 3, 5] },
      ]),
    );
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('a batch behind an older message still being handled is acked one message at a time', async () => {
    const queue = probe.queue('batch-behind');
    const calls = new Recorder<BatchCall>();
    const slowStarted = deferred();
    const releaseSlow = deferred();

    @AmqpController({ queue: { name: queue, durable: false } })
    class BehindController {
      @AmqpEventPattern('job.slow')
      async slow() {
        slowStarted.resolve();
        await releaseSlow.promise;
      }

      @AmqpEventPattern('job.batch', { batch: { size: 3, timeoutMs: 60_000 } })
      batch(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        calls.push(record(jobs, ctx));
      }
    }

    await probe.channel.assertQueue(queue, { durable: false });
    await fill(queue, 0, 1, 'job.slow');
    await fill(queue, 1, 4, 'job.batch');
    wire = watchAcks();
    const { app } = await startMicroservice({ controllers: [BehindController] });
    apps.push(app);
    let call: BatchCall;
    try {
      await slowStarted.promise;
      [call] = await calls.waitFor(1);
      await wire.acks.waitFor(3); // the batch's acks are on the wire before the slow handler's
    } finally {
      releaseSlow.resolve(); // also when the batch never came: the app can close
    }
    await app.close();

    expect(call.tags).toEqual([2, 3, 4]);
    // A multiple ack of 4 would also ack delivery 1, which its handler had not finished.
    const acks = wire.acks.items;
    expect(acks.slice(0, 3)).toEqual([
      [2, false],
      [3, false],
      [4, false],
    ]);
    expect(acks.slice(3).map(([tag]) => tag)).toEqual([1]);
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('a failed batch sends each of its messages through the retry policy, then to the parking lot', async () => {
    const queue = probe.queue('batch-retry');
    const parkingLot = probe.track('queue', parkingLotName(queue));
    probe.track('queue', retryQueueName(queue, 50));
    const calls = new Recorder<BatchCall>();

    @AmqpController({ queue: { name: queue, durable: false }, retry: { attempts: 2, delays: [50] } })
    class FailingController {
      @AmqpEventPattern('job', { batch: { size: 3, timeoutMs: 200 } })
      handle(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        calls.push(record(jobs, ctx));
        throw new RpcException({ message: 'ledger unavailable', code: 'LEDGER' });
      }
    }

    await probe.channel.assertQueue(queue, { durable: false });
    await fill(queue, 0, 3);
    const { app } = await startMicroservice({ controllers: [FailingController] });
    apps.push(app);
    const parked = await nextMessages(probe, parkingLot, 3);
    await app.close();

    expect(calls.items[0]).toMatchObject({ ns: [0, 1, 2], attempts: [1, 1, 1] });
    // The second attempt of each message, in one batch or several as the retry queue gives them back.
    const second = calls.items.slice(1).flatMap((c) => c.ns.map((n, i) => ({ n, attempt: c.attempts[i] })));
    expect(second.sort((x, y) => x.n - y.n)).toEqual([0, 1, 2].map((n) => ({ n, attempt: 2 })));
    expect(
      parked
        .map((m) => ({
          n: (JSON.parse(m.content.toString()) as Job).n,
          attempt: m.properties.headers?.[WarrenHeaders.ATTEMPT] as unknown,
          error: m.properties.headers?.[WarrenHeaders.ERROR_MESSAGE] as unknown,
        }))
        .sort((x, y) => x.n - y.n),
    ).toEqual([0, 1, 2].map((n) => ({ n, attempt: 2, error: 'ledger unavailable' })));
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('a failed batch without a retry policy nacks each of its messages without requeue (dead-lettered)', async () => {
    const queue = probe.queue('batch-nack');
    const dlq = probe.queue('batch-nack-dlq');
    const calls = new Recorder<BatchCall>();

    @AmqpController({
      queue: { name: queue, durable: false, deadLetterExchange: '', deadLetterRoutingKey: dlq },
      topology: { queues: [{ name: dlq, durable: false }] },
    })
    class NackController {
      @AmqpEventPattern('job', { batch: { size: 3, timeoutMs: 60_000 } })
      handle(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        calls.push(record(jobs, ctx));
        throw new Error('ledger unavailable');
      }
    }

    const { app } = await startMicroservice({ controllers: [NackController] });
    apps.push(app);
    await fill(queue, 0, 3);
    const dead = await nextMessages(probe, dlq, 3);
    await app.close();

    expect(calls.items.map((c) => c.ns)).toEqual([[0, 1, 2]]);
    expect(dead.map((m) => (JSON.parse(m.content.toString()) as Job).n)).toEqual([0, 1, 2]);
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('stopping the server hands a half-full batch to its handler at once and acks it', async () => {
    const queue = probe.queue('batch-drain');
    const received = new Recorder<number>();
    const calls = new Recorder<BatchCall>();

    @AmqpController({ queue: { name: queue, durable: false }, deserializer: reportingDeserializer(received) })
    class DrainController {
      @AmqpEventPattern('job', { batch: { size: 10, timeoutMs: 60_000 } })
      async handle(@Payload() jobs: Job[], @Ctx() ctx: AmqpBatchContext) {
        await new Promise((r) => setImmediate(r));
        calls.push(record(jobs, ctx));
      }
    }

    const { app } = await startMicroservice({ controllers: [DrainController] }, { shutdownTimeout: 5_000 });
    apps.push(app);
    await fill(queue, 0, 4);
    await received.waitFor(4);
    expect(calls.items).toEqual([]);
    await app.close();

    expect(calls.items.map((c) => c.ns)).toEqual([[0, 1, 2, 3]]);
    expect(await leftAfterConsumersGone(queue)).toEqual({ messageCount: 0, consumerCount: 0 });
  });
});
