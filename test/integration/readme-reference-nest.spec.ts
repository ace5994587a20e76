import { Controller, Module } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import { uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, deferred, startMicroservice } from '../support/nest-support';

/**
 * README, Calling a handler from any AMQP client: pika's RPC tutorial client, as it is, calls
 * `@MessagePattern('fib', { queue: 'rpc_queue' })` — here with amqplib playing pika.
 */
jest.setTimeout(30_000);

const rpcQueue = uniqueName('rpc_queue');
const received: unknown[] = [];

function fib(n: number): number {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

@Controller()
class FibController {
  @MessagePattern('fib', { queue: rpcQueue })
  fib(@Payload() n: number): number {
    received.push(n);
    return fib(n);
  }
}

@Module({ controllers: [FibController] })
class FibModule {}

describe("a foreign client (README): pika's RPC tutorial, unchanged", () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', rpcQueue);
    const { app } = await startMicroservice({ imports: [FibModule] });
    apps.push(app);
  });

  afterAll(async () => {
    await closeAll(apps);
    await probe?.close();
  });

  it("'30' published to the queue through the default exchange, without content type or pattern header, gets fib(30) back", async () => {
    // The tutorial's client: an exclusive server-named callback queue, reply_to + correlation_id, body str(30).
    const ch = await probe.connection.createChannel();
    const { queue: callbackQueue } = await ch.assertQueue('', { exclusive: true });
    const reply = deferred<ConsumeMessage>();
    await ch.consume(callbackQueue, (m) => m && reply.resolve(m), { noAck: true });
    ch.sendToQueue(rpcQueue, Buffer.from('30'), { replyTo: callbackQueue, correlationId: 'tutorial-1' });

    const m = await reply.promise;
    await ch.close();
    expect(m.properties.correlationId).toBe('tutorial-1');
    expect(m.properties.contentType).toBe('application/json');
    expect(m.content.toString()).toBe('832040');
    expect(m.properties.headers?.['x-warren-error']).toBeUndefined();
    // The body without a content type read as the number 30.
    expect(received).toEqual([30]);
  });
});
