import { Payload } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import { firstValueFrom } from 'rxjs';
import { z } from 'zod';
import type { Logger } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpController,
  AmqpEventPattern,
  AmqpMessagePattern,
  AmqpRpcError,
  VALIDATION_FAILED,
  retryQueueName,
} from '../../lib/nest';
import { amqpUrl } from '../support/broker';
import { BrokerProbe, closeAll, rejection, Recorder, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

/** Waits for the next message of a queue (event based). */
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

/** A Logger that keeps the error lines. */
function errorLog(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const ignore = (): void => undefined;
  return { logger: { debug: ignore, log: ignore, warn: ignore, error: (m) => errors.push(m) }, errors };
}

describe('a handler’s payload schema is enforced on receipt', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await closeAll(apps);
    await probe.close();
  });

  it('a request that fails a JSON Schema gets a VALIDATION_FAILED error reply with the issues; its handler never runs', async () => {
    const queue = probe.queue('schema-rpc');
    const calls = new Recorder<unknown>();
    const cartQuery = {
      type: 'object',
      required: ['cartId'],
      properties: { cartId: { type: 'string', minLength: 1 } },
    } as const;

    @AmqpController({ queue: { name: queue, durable: false } })
    class CartController {
      @AmqpMessagePattern('cart.get', { schema: cartQuery })
      get(@Payload() query: { cartId: string }) {
        calls.push(query);
        return { cartId: query.cartId, lines: 2 };
      }
    }

    const { app } = await startMicroservice({ controllers: [CartController] });
    apps.push(app);
    const client = new AmqpClient({ url: amqpUrl(), queue, timeout: 5_000 });
    apps.push(client);

    const err = await rejection(firstValueFrom(client.send('cart.get', { cartId: 5 })));
    expect(err).toBeInstanceOf(AmqpRpcError);
    expect(err).toMatchObject({
      code: VALIDATION_FAILED,
      message: "The payload of 'cart.get' does not match its schema: cartId: must be string",
      details: { issues: [{ message: 'must be string', path: ['cartId'] }] },
    });
    await expect(firstValueFrom(client.send('cart.get', { cartId: 'c1' }))).resolves.toEqual({
      cartId: 'c1',
      lines: 2,
    });
    expect(calls.items).toEqual([{ cartId: 'c1' }]);
  });

  it('an event that fails a Standard Schema (zod) is rejected without requeue into the DLX, logged, never retried', async () => {
    const queue = probe.queue('schema-events');
    const dlq = probe.queue('schema-events-dlq');
    probe.track('queue', retryQueueName(queue, 50));
    probe.track('queue', `${queue}.parking-lot`);
    const handled = new Recorder<unknown>();
    const log = errorLog();

    @AmqpController({
      queue: { name: queue, durable: false, deadLetterExchange: '', deadLetterRoutingKey: dlq },
      topology: { queues: [{ name: dlq, durable: false }] },
      retry: { attempts: 3, delays: [50] },
    })
    class OrdersController {
      @AmqpEventPattern('order.placed', {
        schema: z.object({ orderId: z.number().int(), lines: z.array(z.string()).default([]) }),
      })
      placed(@Payload() order: unknown) {
        handled.push(order);
      }
    }

    const { app } = await startMicroservice({ controllers: [OrdersController] }, { logger: log.logger });
    apps.push(app);
    await probe.publish('', queue, { orderId: 'seven' }, { headers: { 'x-warren-pattern': 'order.placed' } });
    const dead = await nextMessage(probe, dlq);
    expect(JSON.parse(dead.content.toString())).toEqual({ orderId: 'seven' });
    expect(dead.properties.headers?.['x-death']?.[0]).toMatchObject({ reason: 'rejected', queue });
    // Rejected at once: a retry would have acked it and stored a copy in the retry queue instead.
    expect(await probe.messageCount(retryQueueName(queue, 50))).toBe(0);
    expect(log.errors).toEqual([
      expect.stringMatching(/does not match the schema of 'order\.placed'.*orderId: Invalid input: expected number/),
    ]);

    // A valid payload reaches the handler as the validator's output (zod's default applied).
    await probe.publish('', queue, { orderId: 7 }, { headers: { 'x-warren-pattern': 'order.placed' } });
    expect(await handled.waitFor(1)).toEqual([{ orderId: 7, lines: [] }]);
  });
});
