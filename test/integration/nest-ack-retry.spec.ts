import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload, RpcException } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import {
  AmqpController,
  parkingLotName,
  retryQueueName,
  WarrenHeaders,
  type AmqpContext,
  AmqpEventPattern,
} from '../../lib/nest';
import { settledQueueCounts } from '../support/broker';
import { BrokerProbe, closeAll, deferred, Recorder, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

/** Waits for the next message in a queue through a consumer (event based). */
async function nextMessage(probe: BrokerProbe, queue: string): Promise<ConsumeMessage> {
  const ch = await probe.connection.createChannel();
  try {
    return await new Promise<ConsumeMessage>((resolve) => {
      void ch.consume(queue, (m) => m && resolve(m), { noAck: true });
    });
  } finally {
    await ch.close();
  }
}

describe('acknowledgements', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await closeAll(apps);
    await probe.close();
  });

  it('manual mode: the handler settles through the context; what it leaves unsettled goes back to the queue', async () => {
    const queue = probe.queue('manual');
    const dlq = probe.queue('manual-dlq');
    const seen = new Recorder<string>();

    @AmqpController({
      queue: { name: queue, deadLetterExchange: '', deadLetterRoutingKey: dlq },
      topology: { queues: [{ name: dlq }] },
      ack: 'manual',
    })
    class ManualController {
      @EventPattern('job.ack')
      async ack(@Ctx() ctx: AmqpContext) {
        await new Promise((r) => setImmediate(r));
        ctx.ack();
        ctx.ack(); // settling twice is a no-op
        seen.push('ack');
      }

      @EventPattern('job.reject')
      reject(@Ctx() ctx: AmqpContext) {
        ctx.nack({ requeue: false });
        seen.push('reject');
      }

      @EventPattern('job.forget')
      forget(@Ctx() ctx: AmqpContext) {
        seen.push(`forget:${ctx.isSettled}`);
      }
    }

    const { app } = await startMicroservice({ controllers: [ManualController] });
    apps.push(app);
    const headers = (pattern: string) => ({ headers: { [WarrenHeaders.PATTERN]: pattern } });
    await probe.publish('', queue, {}, headers('job.ack'));
    await probe.publish('', queue, {}, headers('job.reject'));
    await probe.publish('', queue, {}, headers('job.forget'));
    await seen.waitFor(3);
    const dead = await nextMessage(probe, dlq);
    expect(dead.properties.headers?.[WarrenHeaders.PATTERN]).toBe('job.reject');
    await app.close();
    apps.length = 0;
    // The unsettled message was requeued when the consumer's channel closed (after its close-ok: wait for the
    // broker to hold nothing unacknowledged); the acked one is gone.
    expect(await settledQueueCounts(queue)).toMatchObject({ ready: 1 });
    const left = await probe.get(queue);
    expect(left && left.properties.headers?.[WarrenHeaders.PATTERN]).toBe('job.forget');
    expect(seen.items.sort()).toEqual(['ack', 'forget:false', 'reject']);
  });

  it("auto mode without a retry policy: a failed event is nacked without requeue (dead-lettered if there's a DLX)", async () => {
    const queue = probe.queue('noretry');
    const dlq = probe.queue('noretry-dlq');
    const calls = new Recorder<number>();

    @Controller()
    class FailingController {
      @EventPattern('fails.once', {
        queue: { name: queue, deadLetterExchange: '', deadLetterRoutingKey: dlq },
        topology: { queues: [{ name: dlq }] },
      })
      fail(@Payload() n: number) {
        calls.push(n);
        throw new Error('nope');
      }
    }

    apps.push((await startMicroservice({ controllers: [FailingController] })).app);
    await probe.publish('', queue, 7);
    const dead = await nextMessage(probe, dlq);
    expect(JSON.parse(dead.content.toString())).toBe(7);
    expect(calls.items).toEqual([7]);
  });

  it('a body that cannot be deserialized is rejected without requeue and never reaches the handler', async () => {
    const queue = probe.queue('badbody');
    const dlq = probe.queue('badbody-dlq');
    const calls = new Recorder<unknown>();

    @Controller()
    class BodyController {
      @EventPattern('body.json', {
        queue: { name: queue, deadLetterExchange: '', deadLetterRoutingKey: dlq },
        topology: { queues: [{ name: dlq }] },
      })
      handle(@Payload() p: unknown) {
        calls.push(p);
      }
    }

    apps.push((await startMicroservice({ controllers: [BodyController] })).app);
    await probe.publish('', queue, Buffer.from('{not json'), { contentType: 'application/json', messageId: 'bad-1' });
    await probe.publish('', queue, { fine: true });
    const dead = await nextMessage(probe, dlq);
    expect(dead.properties.messageId).toBe('bad-1');
    expect(await calls.waitFor(1)).toEqual([{ fine: true }]);
  });
});

describe('retry policy', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await closeAll(apps);
    await probe.close();
  });

  const trackRetryQueues = (queue: string, delays: number[]) => {
    for (const d of delays) probe.track('queue', retryQueueName(queue, d));
    probe.track('queue', parkingLotName(queue));
  };

  it('a handler that fails twice then succeeds is called three times, after the configured delays', async () => {
    const queue = probe.queue('flaky');
    trackRetryQueues(queue, [200, 400]);
    const calls = new Recorder<{ at: number; attempt: number; redelivered: boolean }>();

    @Controller()
    class FlakyController {
      @EventPattern('flaky.job', { queue, retry: { attempts: 3, delays: [200, 400] } })
      handle(@Ctx() ctx: AmqpContext) {
        calls.push({ at: Date.now(), attempt: ctx.getAttempt(), redelivered: ctx.isRedelivered() });
        if (calls.items.length < 3) throw new RpcException('not yet');
      }
    }

    apps.push((await startMicroservice({ controllers: [FlakyController] })).app);
    await probe.publish('', queue, { job: 1 }, { headers: { [WarrenHeaders.PATTERN]: 'flaky.job' } });
    const seen = await calls.waitFor(3);
    expect(seen.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(190);
    expect(seen[2].at - seen[1].at).toBeGreaterThanOrEqual(390);
    expect(seen[2].at - seen[1].at).toBeLessThan(3000);
    expect(seen.every((c) => !c.redelivered)).toBe(true);
    expect(await probe.messageCount(parkingLotName(queue))).toBe(0);
    // A fourth call would be a bug: nothing is left anywhere.
    for (const q of [queue, retryQueueName(queue, 200), retryQueueName(queue, 400)]) {
      expect(await probe.messageCount(q)).toBe(0);
    }
  });

  it('one that always fails lands in the parking lot after N attempts, the error in its headers; others keep flowing', async () => {
    const queue = probe.queue('poison');
    const exchange = probe.exchange('poison');
    trackRetryQueues(queue, [300]);
    const calls = new Recorder<{ id: string; attempt: number }>();
    const goodDone = deferred();

    @AmqpController({ queue, exchange, retry: { attempts: 3, delays: [300] } })
    class PoisonController {
      @AmqpEventPattern('payment.received')
      handle(@Payload() p: { id: string }, @Ctx() ctx: AmqpContext) {
        calls.push({ id: p.id, attempt: ctx.getAttempt() });
        if (p.id === 'good') {
          goodDone.resolve();
          return;
        }
        throw new RpcException({ status: 'error', message: 'card declined', code: 'DECLINED' });
      }
    }

    apps.push((await startMicroservice({ controllers: [PoisonController] })).app);
    await probe.publish(exchange, 'payment.received', { id: 'poison' }, { messageId: 'm-poison' });
    await probe.publish(exchange, 'payment.received', { id: 'good' });
    await goodDone.promise;
    // The good message was handled while the poison one waited in its retry queue.
    expect(calls.items.filter((c) => c.id === 'poison')).toHaveLength(1);

    const parked = await nextMessage(probe, parkingLotName(queue));
    expect(JSON.parse(parked.content.toString())).toEqual({ id: 'poison' });
    expect(parked.properties.messageId).toBe('m-poison');
    expect(parked.properties.headers).toMatchObject({
      [WarrenHeaders.ATTEMPT]: 3,
      [WarrenHeaders.ERROR_MESSAGE]: 'card declined',
      [WarrenHeaders.ERROR_CODE]: 'DECLINED',
      [WarrenHeaders.PATTERN]: 'payment.received',
      [WarrenHeaders.ORIGINAL_EXCHANGE]: exchange,
      [WarrenHeaders.ORIGINAL_ROUTING_KEY]: 'payment.received',
      [WarrenHeaders.QUEUE]: queue,
    });
    expect(typeof parked.properties.headers?.[WarrenHeaders.FAILED_AT]).toBe('string');
    expect(calls.items.filter((c) => c.id === 'poison').map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(await probe.messageCount(queue)).toBe(0);
  });

  it('retries can route back through a dedicated exchange and use exponential backoff', async () => {
    const queue = probe.queue('backoff');
    const retryExchange = probe.exchange('retry');
    trackRetryQueues(queue, [100, 200]);
    const calls = new Recorder<number>();

    @Controller()
    class BackoffController {
      @AmqpEventPattern('backoff.job', {
        queue,
        retry: {
          attempts: 3,
          backoff: { initial: 100, factor: 2 },
          exchange: retryExchange,
          parkingLot: probe.queue('backoff-parking-lot'),
        },
      })
      handle() {
        calls.push(Date.now());
        if (calls.items.length < 3) throw new Error('again');
      }
    }

    apps.push((await startMicroservice({ controllers: [BackoffController] })).app);
    expect(await probe.exchangeExists(retryExchange)).toBe(true);
    await probe.publish('', queue, {}, { headers: { [WarrenHeaders.PATTERN]: 'backoff.job' } });
    const at = await calls.waitFor(3);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(90);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(190);
  });
});
