import { Controller, type INestMicroservice } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import {
  AmqpHealthIndicator,
  AmqpModule,
  AmqpServer,
  WarrenHeaders,
  type AmqpContext,
  AmqpEventPattern,
} from '../../lib/nest';
import { amqpUrl, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { BrokerProbe, Recorder } from './nest-support';

jest.setTimeout(30_000);

type Mode = 'standalone' | 'module';

/** A microservice with the given controllers: its own AmqpServer, or the DI-managed one of AmqpModule. */
async function start(mode: Mode, controllers: Array<new (...args: never[]) => unknown>, url = amqpUrl()) {
  if (mode === 'standalone') {
    const moduleRef = await Test.createTestingModule({ controllers }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: new AmqpServer({ url }), logger: false });
    await app.listen();
    return app;
  }
  const moduleRef = await Test.createTestingModule({ imports: [AmqpModule.forRoot({ url })], controllers }).compile();
  const app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
  await app.listen();
  return app;
}

describe('graceful shutdown', () => {
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await probe.close();
  });

  it.each<Mode>(['standalone', 'module'])(
    '%s: in-flight handlers finish and are acked, unstarted messages stay queued; nothing lost or duplicated',
    async (mode) => {
      const queue = probe.queue(`shutdown-${mode}`);
      const total = 30;
      const started = new Recorder<number>();
      const finished = new Recorder<{ n: number; instance: string }>();

      const controllerFor = (instance: string) => {
        @Controller()
        class SlowController {
          @EventPattern('work.item', { queue, prefetch: 8, concurrency: 4 })
          async handle(@Payload() n: number) {
            started.push(n);
            await new Promise((r) => setTimeout(r, 300));
            finished.push({ n, instance });
          }
        }
        return SlowController;
      };

      const first = await start(mode, [controllerFor('first')]);
      for (let n = 0; n < total; n++) {
        await probe.publish('', queue, n, { headers: { [WarrenHeaders.PATTERN]: 'work.item' } });
      }
      await started.waitFor(4);
      await first.close();
      // Everything the first instance started, it finished (and acked) before closing.
      const firstDone = finished.items.filter((f) => f.instance === 'first').map((f) => f.n);
      expect(firstDone.sort()).toEqual([...started.items].sort());
      expect(firstDone.length).toBeGreaterThanOrEqual(4);
      expect(await probe.messageCount(queue)).toBe(total - firstDone.length);

      const second = await start(mode, [controllerFor('second')]);
      try {
        const all = await finished.waitFor(total, 20_000);
        const ns = all.map((f) => f.n).sort((a, b) => a - b);
        expect(ns).toEqual(Array.from({ length: total }, (_, i) => i));
      } finally {
        await second.close();
      }
    },
  );
});

describe('starting while the broker is down', () => {
  let probe: BrokerProbe;
  let proxy: TcpProxy;
  let app: INestMicroservice | undefined;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
    proxy = new TcpProxy();
    await proxy.start();
  });

  afterEach(async () => {
    await app?.close();
    await proxy.close();
    await probe.close();
  });

  it('the app starts (health down), then declares its topology and serves once the broker is up', async () => {
    const queue = probe.queue('late');
    const seen = new Recorder<{ body: unknown; redelivered: boolean }>();

    @Controller()
    class LateController {
      @AmqpEventPattern('late.event', { queue: { name: queue, durable: false } })
      handle(@Payload() body: unknown, @Ctx() ctx: AmqpContext) {
        seen.push({ body, redelivered: ctx.isRedelivered() });
      }
    }

    proxy.refuse(true);
    const moduleRef = await Test.createTestingModule({
      imports: [AmqpModule.forRoot({ url: proxy.url(), startWithoutBroker: true, connectionName: uniqueName('late') })],
      controllers: [LateController],
    }).compile();
    const health = moduleRef.get(AmqpHealthIndicator);
    expect(health.isHealthy()).toBe(false);
    await expect(health.check()).rejects.toMatchObject({ causes: { amqp: { status: 'down' } } });
    app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
    await app.listen(); // resolves although the broker is unreachable
    expect(await probe.queueInfo(queue)).toBeNull();

    proxy.refuse(false);
    await waitFor(async () => (await probe.queueInfo(queue))?.consumerCount === 1, 15_000, 'the consumer to start');
    expect(health.isHealthy()).toBe(true);
    await probe.publish('', queue, { hello: 'late' }, { headers: { [WarrenHeaders.PATTERN]: 'late.event' } });
    expect(await seen.waitFor(1)).toEqual([{ body: { hello: 'late' }, redelivered: false }]);
  });
});
