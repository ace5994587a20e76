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
import type { AmqpSession, SessionRole } from '../../lib/amqp';
import { amqpUrl, closeConnectionsWhere, settledQueueCounts, uniqueName, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { BrokerProbe, deferred, Recorder, startMicroservice } from '../support/nest-support';

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
      // The prefetched messages nobody started go back when the channel closes, after its close-ok (the consumer was
      // cancelled first): count once the broker holds none of them unacknowledged.
      expect((await settledQueueCounts(queue)).ready).toBe(total - firstDone.length);

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
  it.each<Mode>(['standalone', 'module'])(
    '%s: closing cancels the consumer at once; the running handler still finishes and its ack counts',
    async (mode) => {
      const queue = probe.queue(`cancel-first-${mode}`);
      const started = new Recorder<number>();
      const finished: number[] = [];
      const gate = deferred();

      @Controller()
      class GatedController {
        @EventPattern('gated.item', { queue: { name: queue, durable: false }, prefetch: 1 })
        async handle(@Payload() n: number) {
          started.push(n);
          await gate.promise;
          finished.push(n);
        }
      }

      const app = await start(mode, [GatedController]);
      const closing = (async () => {
        for (const n of [0, 1]) {
          await probe.publish('', queue, n, { headers: { [WarrenHeaders.PATTERN]: 'gated.item' } });
        }
        await started.waitFor(1);
        return app.close();
      })();
      try {
        // The broker sees no consumer any more while the handler is still running.
        await waitFor(async () => (await probe.queueInfo(queue))?.consumerCount === 0, 10_000, 'the consumer to go');
        expect(finished).toEqual([]);
      } finally {
        gate.resolve();
        await closing;
      }

      expect(finished).toEqual([0]);
      const left = await probe.get(queue);
      expect(left && JSON.parse(left.content.toString())).toBe(1);
      expect(left && left.fields.redelivered).toBe(false); // never handed to the closing consumer
      expect(await probe.messageCount(queue)).toBe(0);
    },
  );
});

describe('a lost consumer connection', () => {
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await probe.close();
  });

  it('messages waiting for a handler slot when their channel died are not handled; their redeliveries are, once', async () => {
    const queue = probe.queue('slot');
    const connectionName = uniqueName('nest-slot');
    const seen = new Recorder<{ n: number; redelivered: boolean }>();
    const gate = deferred();

    @Controller()
    class OneAtATimeController {
      @AmqpEventPattern('slot.item', { queue: { name: queue, durable: false }, prefetch: 10, concurrency: 1 })
      async handle(@Payload() n: number, @Ctx() ctx: AmqpContext) {
        seen.push({ n, redelivered: ctx.isRedelivered() });
        if (n === 0 && !ctx.isRedelivered()) await gate.promise;
      }
    }

    const { app, server } = await startMicroservice({ controllers: [OneAtATimeController] }, { connectionName });
    try {
      const session = server.unwrap<AmqpSession>();
      for (const n of [0, 1, 2, 3]) {
        await probe.publish('', queue, n, { headers: { [WarrenHeaders.PATTERN]: 'slot.item' } });
      }
      await seen.waitFor(1);
      // 1, 2 and 3 are delivered and wait behind 0 (concurrency 1).
      await waitFor(async () => (await probe.queueInfo(queue))?.messageCount === 0, 10_000, 'all to be delivered');

      const recovered = new Promise<void>((resolve) =>
        session.on('recovered', (role: SessionRole) => role === 'consumer' && resolve()),
      );
      await waitFor(
        async () => (await closeConnectionsWhere((c) => c.clientName === `${connectionName}:consumer`)).length > 0,
        10_000,
        'the consumer connection to be closed',
      );
      await recovered;
      gate.resolve();

      await seen.waitFor(5);
      await app.close();
      expect(seen.items).toEqual([
        { n: 0, redelivered: false },
        { n: 0, redelivered: true },
        { n: 1, redelivered: true },
        { n: 2, redelivered: true },
        { n: 3, redelivered: true },
      ]);
      expect((await settledQueueCounts(queue)).ready).toBe(0);
    } finally {
      await app.close();
    }
  });
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
