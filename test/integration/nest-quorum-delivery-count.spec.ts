import { Controller } from '@nestjs/common';
import { Ctx, EventPattern } from '@nestjs/microservices';
import { AmqpSession } from '../../lib/amqp';
import { type AmqpContext } from '../../lib/nest';
import { uniqueName } from '../support/broker';
import { closeAll, Recorder, startMicroservice } from '../support/nest-support';

/**
 * Quorum queues count deliveries: `ctx.getDeliveryCount()` reads the broker's `x-delivery-count` (absent on a first
 * delivery, 1 on the first redelivery), and `deliveryLimit` (`x-delivery-limit`) dead-letters a message that was
 * returned more often than that.
 */
jest.setTimeout(30_000);

const queue = uniqueName('nest-quorum-count');
const dlq = uniqueName('nest-quorum-count-dlq');
const seen = new Recorder<number | undefined>();

@Controller()
class CountingController {
  @EventPattern('count.me', {
    queue: { name: queue, type: 'quorum', deliveryLimit: 2, deadLetterExchange: '', deadLetterRoutingKey: dlq },
    ack: 'manual',
  })
  handle(@Ctx() ctx: AmqpContext) {
    seen.push(ctx.getDeliveryCount());
    ctx.nack({ requeue: true });
  }
}

const apps: Array<{ close(): Promise<unknown> }> = [];
let session: AmqpSession;

beforeAll(async () => {
  session = new AmqpSession({ logger: { warn: () => undefined, error: () => undefined } });
  await session.connect();
  await session.queueDeclare(dlq, { durable: true });
});

afterAll(async () => {
  await closeAll(apps);
  await session.queueDelete(queue).catch(() => undefined);
  await session.queueDelete(dlq).catch(() => undefined);
  await session.close();
});

it('getDeliveryCount() follows x-delivery-count, and past deliveryLimit the message is dead-lettered', async () => {
  const { app } = await startMicroservice({ controllers: [CountingController] });
  apps.push(app);
  const deadLettered = new Promise<string>((resolve) => {
    void session.consume(
      dlq,
      (m) => {
        m.ack();
        resolve(m.body.toString());
      },
      {},
    );
  });
  await session.publish('', queue, JSON.stringify({ n: 1 }), {
    contentType: 'application/json',
    headers: { 'x-warren-pattern': 'count.me' },
  });
  // Delivered, returned twice (counts 1 and 2), and the third return passes the limit of 2.
  await expect(seen.waitFor(3)).resolves.toEqual([undefined, 1, 2]);
  await expect(deadLettered).resolves.toBe('{"n":1}');
});
