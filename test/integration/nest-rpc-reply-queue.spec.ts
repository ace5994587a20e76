import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ConfigError } from '../../lib/amqp';
import { AmqpClient, AmqpController, type AmqpClientOptions, type AmqpContext } from '../../lib/nest';
import { amqpUrl, queueExists, rabbitmqctl, uniqueName } from '../support/broker';
import { FIXED_REPLY_QUEUE_EXPIRES_MS } from '../../lib/nest/client/reply-channel';
import { BrokerProbe, closeAll, rejection, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const exchange = uniqueName('nest-replyq-x');
const queue = uniqueName('nest-replyq-q');
/** The reply_to of every request the handler got, in order. */
const seenReplyTo: Array<string | undefined> = [];

@AmqpController({
  queue: { name: queue, durable: false },
  exchange: { name: exchange, type: 'topic', durable: false },
})
class EchoController {
  @MessagePattern('replyq.echo')
  echo(@Payload() data: unknown, @Ctx() ctx: AmqpContext) {
    seenReplyTo.push(ctx.getProperties().replyTo);
    return { echo: data };
  }
}

interface QueueRow {
  name: string;
  consumers: number;
  durable: boolean;
  exclusive: boolean;
  auto_delete: boolean;
  /** `[name, type, value]` triples. */
  arguments: Array<[string, string, unknown]>;
}

/** The broker's view of one queue (undefined when it does not exist). */
async function queueRow(name: string): Promise<QueueRow | undefined> {
  const out = await rabbitmqctl([
    'list_queues',
    '-q',
    'name',
    'consumers',
    'durable',
    'exclusive',
    'auto_delete',
    'arguments',
    '--formatter',
    'json',
  ]);
  const rows = JSON.parse(out.trim() || '[]') as QueueRow[];
  return rows.find((r) => r.name === name);
}

describe("Nest RPC with replyTo: 'queue'", () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  const newClient = (options: AmqpClientOptions) => {
    const c = new AmqpClient({ url: amqpUrl(), exchange, timeout: 5000, ...options });
    apps.push(c);
    return c;
  };
  const call = (c: AmqpClient, n: number) => firstValueFrom(c.send('replyq.echo', n));

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    probe.track('queue', queue);
    probe.track('exchange', exchange);
    apps.push((await startMicroservice({ controllers: [EchoController] })).app);
  });

  afterAll(async () => {
    await closeAll(apps);
    await probe?.close();
  });

  beforeEach(() => {
    seenReplyTo.length = 0;
  });

  it('with a fixed replyQueue, replies come back on that queue, which the client declared and consumes', async () => {
    const replyQueue = probe.queue('fixed-reply');
    const client = newClient({ replyTo: 'queue', replyQueue });
    await expect(Promise.all([1, 2, 3].map((n) => call(client, n)))).resolves.toEqual([
      { echo: 1 },
      { echo: 2 },
      { echo: 3 },
    ]);
    expect(seenReplyTo).toEqual([replyQueue, replyQueue, replyQueue]);
    // One consumer (this client's); a durable, non-exclusive queue (RabbitMQ 4.3 refuses transient non-exclusive
    // ones), so that it outlives a reconnect of the client, which the broker deletes once nobody has used it a while.
    await expect(queueRow(replyQueue)).resolves.toEqual({
      name: replyQueue,
      consumers: 1,
      durable: true,
      exclusive: false,
      auto_delete: false,
      arguments: [['x-expires', 'signedint', FIXED_REPLY_QUEUE_EXPIRES_MS]],
    });
    await client.close();
    await expect(queueExists(replyQueue)).resolves.toBe(false);
  });

  it('without a name, replies come back on a private exclusive server-named queue, deleted on close', async () => {
    const client = newClient({ replyTo: 'queue' });
    await expect(call(client, 7)).resolves.toEqual({ echo: 7 });
    const [replyQueue] = seenReplyTo;
    expect(replyQueue).toMatch(/^amq\.gen-/);
    await expect(queueRow(replyQueue!)).resolves.toMatchObject({ consumers: 1, exclusive: true });
    await client.close();
    await expect(queueExists(replyQueue!)).resolves.toBe(false);
  });

  it('a second client on a fixed replyQueue another client reads fails with a ConfigError, the first keeps working', async () => {
    const replyQueue = probe.queue('shared-reply');
    const first = newClient({ replyTo: 'queue', replyQueue });
    await expect(call(first, 1)).resolves.toEqual({ echo: 1 });
    const second = newClient({ replyTo: 'queue', replyQueue });
    const err = await rejection(call(second, 2));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: 'replyQueue' });
    expect(err.message).toContain(`'${replyQueue}' already has 1 consumer`);
    await expect(call(first, 3)).resolves.toEqual({ echo: 3 });
    expect(seenReplyTo).toEqual([replyQueue, replyQueue]);
  });
});
