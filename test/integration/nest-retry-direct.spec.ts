import { Controller } from '@nestjs/common';
import { Ctx, EventPattern } from '@nestjs/microservices';
import { type AmqpContext } from '../../lib/nest';
import { BrokerProbe, closeAll, Recorder, startMicroservice } from '../support/nest-support';

/**
 * A message published straight to a queue with one handler (default exchange, the queue's name as routing key, no
 * x-warren-pattern) reaches that handler — and so must its retry copies.
 */
jest.setTimeout(30_000);

let probe: BrokerProbe;
const apps: Array<{ close(): Promise<unknown> }> = [];

beforeAll(async () => {
  probe = await BrokerProbe.open();
});

afterAll(async () => {
  await closeAll(apps);
  await probe.close();
});

it('a message sent straight to the queue of its only handler is retried by that handler', async () => {
  const queue = probe.queue('retry-direct');
  probe.track('queue', `${queue}.retry.50`);
  probe.track('queue', `${queue}.parking-lot`);
  const attempts = new Recorder<number>();

  @Controller()
  class DirectController {
    @EventPattern('jobs.run', { queue, retry: { attempts: 3, delays: [50] } })
    run(@Ctx() ctx: AmqpContext) {
      attempts.push(ctx.getAttempt());
      if (ctx.getAttempt() < 2) throw new Error('first try fails');
    }
  }

  const { app } = await startMicroservice({ controllers: [DirectController] });
  apps.push(app);
  // As a plain AMQP client would: to the queue, no pattern header.
  probe.channel.sendToQueue(queue, Buffer.from('{}'), { contentType: 'application/json' });
  await probe.channel.waitForConfirms();
  await expect(attempts.waitFor(2)).resolves.toEqual([1, 2]);
});
