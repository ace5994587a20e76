import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { TimeoutError } from '../../lib/amqp';
import { AmqpClient, AmqpMessagePattern, AmqpRecordBuilder } from '../../lib/nest';
import { amqpUrl } from '../support/broker';
import { BrokerProbe, closeAll, Recorder, rejection, startMicroservice } from '../support/nest-support';

/**
 * Expiring requests: a `send` request carries `expiration` equal to its call timeout, so the broker drops
 * a request whose caller has given up instead of a server handling it later.
 */
jest.setTimeout(30_000);

let probe: BrokerProbe;
const closables: Array<{ close(): Promise<unknown> | unknown }> = [];

beforeAll(async () => {
  probe = await BrokerProbe.open();
});

afterAll(async () => {
  await closeAll(closables as Array<{ close(): Promise<unknown> }>);
  await probe.close();
});

async function queueWithoutConsumer(prefix: string): Promise<string> {
  const name = probe.queue(prefix);
  await probe.channel.assertQueue(name, { durable: false });
  return name;
}

function clientFor(queue: string, options: { expireRequests?: boolean } = {}): AmqpClient {
  const client = new AmqpClient({ url: amqpUrl(), queue, ...options });
  closables.push(client);
  return client;
}

it('a request carries expiration = its call timeout', async () => {
  const queue = await queueWithoutConsumer('rpc-exp-ttl');
  const client = clientFor(queue);
  const call = firstValueFrom(client.send('exp.ttl', 1)).catch((e: Error) => e);
  const record = new AmqpRecordBuilder(2).setOptions({ timeout: 4321 }).build();
  const call2 = firstValueFrom(client.send('exp.ttl', record)).catch((e: Error) => e);
  const first = await waitForMessage(queue);
  const second = await waitForMessage(queue);
  expect(first.properties.expiration).toBe('30000'); // the default timeout
  expect(second.properties.expiration).toBe('4321');
  await client.close();
  await Promise.all([call, call2]);
});

it('expireRequests: false sends requests without a TTL; an explicit expiration wins over the timeout', async () => {
  const queue = await queueWithoutConsumer('rpc-exp-off');
  const off = clientFor(queue, { expireRequests: false });
  const call = firstValueFrom(off.send('exp.off', 1)).catch((e: Error) => e);
  expect((await waitForMessage(queue)).properties.expiration).toBeUndefined();
  const on = clientFor(queue);
  const explicit = new AmqpRecordBuilder(2).setOptions({ expiration: 60_000, timeout: 1000 }).build();
  const call2 = firstValueFrom(on.send('exp.off', explicit)).catch((e: Error) => e);
  expect((await waitForMessage(queue)).properties.expiration).toBe('60000');
  await off.close();
  await on.close();
  await Promise.all([call, call2]);
});

it('a server started after a request timed out never sees that request; later requests are answered', async () => {
  const queue = await queueWithoutConsumer('rpc-exp-late');
  const seen = new Recorder<number>();

  @Controller()
  class LateController {
    @AmqpMessagePattern('exp.late', { queue })
    handle(@Payload() n: number) {
      seen.push(n);
      return n * 10;
    }
  }

  const client = clientFor(queue);
  const expired = new AmqpRecordBuilder(1).setOptions({ timeout: 200 }).build();
  const err = await rejection(firstValueFrom(client.send('exp.late', expired)));
  expect(err).toBeInstanceOf(TimeoutError);

  const { app } = await startMicroservice({ controllers: [LateController] });
  closables.push(app);
  await expect(firstValueFrom(client.send('exp.late', 2))).resolves.toBe(20);
  // The expired request was ahead of it in the queue: had it been delivered, it would have come first.
  expect(seen.items).toEqual([2]);
});

/** The next message of `queue` (taken off it), waiting until one is there. */
async function waitForMessage(queue: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = await probe.channel.get(queue, { noAck: true });
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no message on ${queue}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
