import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { Channel, type QueueOptions } from '../../lib/amqp';
import { resolveQueueOptions } from '../../lib/amqp/declare-options';
import { AmqpClient, AmqpController, WarrenHeaders, type AmqpContext } from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, Recorder, startMicroservice } from '../support/nest-support';

/**
 * What RabbitMQ 4.x requires of a 0-9-1 client, checked on a whole app: nothing Warren declares on its own is a
 * transient non-exclusive queue (4.3 refuses them by default), no global qos, and retry counting that never reads
 * `x-death` (4.0 stopped interpreting it on republish).
 */
jest.setTimeout(30_000);

const work = uniqueName('nest-r4-work'); // the app's own, transient: its choice
const requests = uniqueName('nest-r4-rpc');
const failing = new Recorder<number>();
const counted = new Recorder<number>();

@AmqpController({ queue: { name: work, durable: false } })
class WorkController {
  @EventPattern('job.flaky', { retry: { attempts: 3, delays: [50] } })
  flaky(@Ctx() ctx: AmqpContext) {
    failing.push(ctx.getAttempt());
    throw new Error('not yet');
  }

  @EventPattern('job.counted', { retry: { attempts: 3, delays: [50] } })
  counted(@Ctx() ctx: AmqpContext) {
    counted.push(ctx.getAttempt());
  }
}

@Controller()
class RpcController {
  @MessagePattern('r4.ping', { queue: { name: requests, durable: false, autoDelete: true } })
  ping() {
    return 'pong';
  }

  @EventPattern('r4.broadcast', { queue: { name: '' } })
  broadcast(@Payload() _: unknown) {}
}

const closables: Array<{ close(): Promise<unknown> }> = [];
const declared: Array<{ name: string; options: QueueOptions }> = [];
const qosGlobal: Array<boolean | undefined> = [];
let probe: BrokerProbe;

beforeAll(async () => {
  probe = await BrokerProbe.open();
  probe.track('queue', `${work}.retry.50`);
  probe.track('queue', `${work}.parking-lot`);
  const declare = Channel.prototype.queueDeclare;
  jest.spyOn(Channel.prototype, 'queueDeclare').mockImplementation(function (this: Channel, name = '', options = {}) {
    declared.push({ name, options });
    return declare.call(this, name, options);
  });
  const qos = Channel.prototype.qos;
  jest.spyOn(Channel.prototype, 'qos').mockImplementation(function (this: Channel, count, global, options) {
    qosGlobal.push(global);
    return qos.call(this, count, global, options);
  });
  const { app } = await startMicroservice({ controllers: [WorkController, RpcController] });
  closables.push(app);
  // Both reply modes of the client, the named reply queue too.
  for (const options of [
    {},
    { replyTo: 'queue' as const },
    { replyTo: 'queue' as const, replyQueue: uniqueName('r4-reply') },
  ]) {
    const client = new AmqpClient({ url: amqpUrl(), queue: requests, ...options });
    closables.push(client);
    await expect(firstValueFrom(client.send('r4.ping', {}))).resolves.toBe('pong');
  }
});

afterAll(async () => {
  jest.restoreAllMocks();
  await closeAll(closables);
  await probe.close();
});

it('every queue Warren declares on its own is durable or exclusive (retry queues, parking lots, reply queues, server-named handler queues)', () => {
  const own = declared.filter(({ name, options }) => name !== work && name !== requests && !options.passive);
  const kinds = new Set(
    own.map(({ name }) =>
      name === ''
        ? 'server-named'
        : name.endsWith('.parking-lot')
          ? 'parking lot'
          : name.includes('.retry.')
            ? 'retry'
            : 'reply',
    ),
  );
  // The app above makes Warren declare each kind at least once.
  expect([...kinds].sort()).toEqual(['parking lot', 'reply', 'retry', 'server-named']);
  for (const { name, options } of own) {
    const d = resolveQueueOptions(name, options);
    expect({ name, transientShared: !d.durable && !d.exclusive }).toEqual({ name, transientShared: false });
  }
});

it('never asks for a global qos', () => {
  expect(qosGlobal.length).toBeGreaterThan(0);
  for (const global of qosGlobal) expect(global ?? false).toBe(false);
});

it('retry counting never reads x-death: a message carrying an x-death count is on its first attempt', async () => {
  await probe.channel.publish('', work, Buffer.from('1'), {
    contentType: 'application/json',
    headers: {
      [WarrenHeaders.PATTERN]: 'job.counted',
      'x-death': [
        { count: 10, reason: 'rejected', queue: 'elsewhere', time: new Date(), exchange: '', 'routing-keys': [work] },
      ],
    },
  });
  await probe.channel.waitForConfirms();
  await expect(counted.waitFor(1)).resolves.toEqual([1]);
});

it("retries are counted by Warren's own header: attempts 1, 2, 3", async () => {
  await probe.channel.publish('', work, Buffer.from('1'), {
    contentType: 'application/json',
    headers: { [WarrenHeaders.PATTERN]: 'job.flaky' },
  });
  await probe.channel.waitForConfirms();
  await expect(failing.waitFor(3)).resolves.toEqual([1, 2, 3]);
});

it('no code under lib/ reads x-death', () => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const p = path.join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.generated.ts')) files.push(p);
    }
  };
  walk(path.resolve(__dirname, '../../lib'));
  const readers = files.filter((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .some((line) => line.includes("'x-death'") || line.includes('"x-death"')),
  );
  expect(readers).toEqual([]);
});
