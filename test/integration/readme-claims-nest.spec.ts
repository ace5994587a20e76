import { Controller, type INestMicroservice } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { AmqpSession, type Logger } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpModule,
  AmqpServer,
  parkingLotName,
  retryQueueName,
  WarrenHeaders,
  type AmqpContext,
} from '../../lib/nest';
import { amqpUrl, uniqueName, waitFor } from '../support/broker';
import { BrokerProbe, closeAll, deferred, Recorder, rejection } from '../support/nest-support';

/**
 * README claims about the Nest layer proved against the live broker (parallel-safe: unique names, nothing but the
 * test's own connections and channels disturbed).
 */
jest.setTimeout(30_000);

const silent: Logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };

type Mode = 'standalone' | 'module';

/** A microservice with the given controllers: its own AmqpServer, or the DI-managed one of AmqpModule. */
async function start(
  mode: Mode,
  controllers: Array<new (...args: never[]) => unknown>,
  options: { shutdownTimeout?: number } = {},
): Promise<INestMicroservice> {
  const connection = { url: amqpUrl(), logger: silent, ...options };
  if (mode === 'standalone') {
    const moduleRef = await Test.createTestingModule({ controllers }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: new AmqpServer(connection), logger: false });
    await app.listen();
    return app;
  }
  const moduleRef = await Test.createTestingModule({
    imports: [AmqpModule.forRoot(connection)],
    controllers,
  }).compile();
  const app = moduleRef.createNestMicroservice({ strategy: moduleRef.get(AmqpServer), logger: false });
  await app.listen();
  return app;
}

/** `p`, or a rejection naming `what` after `ms`: a hang fails the test with a reason instead of its timeout. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('README: shutdownTimeout bounds a handler that never finishes', () => {
  const SHUTDOWN_TIMEOUT_MS = 500;
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await probe.close();
  });

  it.each<Mode>(['standalone', 'module'])(
    '%s: app.close() returns after about shutdownTimeout; the message is not acked, and the broker redelivers it',
    async (mode) => {
      const queue = probe.queue(`stuck-${mode}`);
      const started = new Recorder<number>();

      @Controller()
      class StuckController {
        @EventPattern('stuck.job', { queue: { name: queue, durable: false } })
        handle(@Payload() n: number) {
          started.push(n);
          return new Promise<never>(() => undefined); // never settles
        }
      }

      const app = await start(mode, [StuckController], { shutdownTimeout: SHUTDOWN_TIMEOUT_MS });
      await probe.publish('', queue, 1, { headers: { [WarrenHeaders.PATTERN]: 'stuck.job' } });
      await started.waitFor(1);

      const closing = Date.now();
      await within(SHUTDOWN_TIMEOUT_MS + 5000, 'app.close()', app.close());
      const took = Date.now() - closing;
      expect(took).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT_MS - 20); // it did wait for the handler...
      expect(took).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 1500); // ...and not much longer

      // Never acked: back in the queue once the channel closed, flagged as redelivered.
      const back = await waitFor(
        async () => (await probe.get(queue)) || undefined,
        10_000,
        `the message back in ${queue}`,
      );
      expect(JSON.parse(back.content.toString())).toBe(1);
      expect(back.fields.redelivered).toBe(true);
    },
  );
});

describe('README: an RPC reply whose delivering channel has closed goes through the confirmed session publish', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await closeAll(apps);
    await probe.close();
  });

  it('the caller gets the reply of the handler whose channel died under it', async () => {
    const queue = probe.queue('orphan-rpc');
    const missing = uniqueName('nest-no-such-exchange');
    const redelivered = deferred();
    const releaseSecond = deferred();
    const replyTo = deferred<string>();
    const calls = new Recorder<{ redelivered: boolean; live: boolean }>();

    @Controller()
    class OrphanController {
      @MessagePattern('orphan.get', { queue: { name: queue, durable: false } })
      async get(@Payload() q: { id: number }, @Ctx() ctx: AmqpContext) {
        const msg = ctx.getMessage();
        if (!ctx.isRedelivered()) {
          replyTo.resolve(msg.properties.replyTo ?? '');
          // A publish to a missing exchange makes the broker close this channel (404): the request goes back to the
          // queue and comes again on the consumer's new channel.
          msg.publishOnChannel(missing, 'x', 'breaks the channel');
          await redelivered.promise;
          calls.push({ redelivered: false, live: msg.isLive() });
          return { id: q.id, by: 'first' };
        }
        calls.push({ redelivered: true, live: msg.isLive() });
        redelivered.resolve();
        await releaseSecond.promise;
        return { id: q.id, by: 'second' };
      }
    }

    const server = new AmqpServer({ url: amqpUrl(), logger: silent, shutdownTimeout: 1000 });
    const moduleRef = await Test.createTestingModule({ controllers: [OrphanController] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
    apps.push(app);
    await app.listen();
    const client = new AmqpClient({ url: amqpUrl(), logger: silent, queue, timeout: 5000 });
    apps.push(client);
    const sessionPublish = jest.spyOn(AmqpSession.prototype, 'publish');

    const answer = await firstValueFrom(client.send('orphan.get', { id: 3 }));
    // The first handler answered (the second one is still held), its channel closed under it.
    expect(answer).toEqual({ id: 3, by: 'first' });
    expect(calls.items).toEqual([
      { redelivered: true, live: true },
      { redelivered: false, live: false },
    ]);
    const to = await replyTo.promise;
    const fallback = sessionPublish.mock.calls.filter((args: unknown[]) => args[0] === '' && args[1] === to);
    expect(fallback).toHaveLength(1);
    expect(sessionPublish.mock.contexts[sessionPublish.mock.calls.indexOf(fallback[0])]).toBe(server.unwrap());
    releaseSecond.resolve();
  });
});

describe('issue 11: an event failure is recorded with the error the handler threw, not Nest\'s "Internal server error"', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    await closeAll(apps);
    await probe.close();
  });

  /** An Error subclass that keeps Error's `name`, as most do. */
  class SkuError extends Error {
    readonly code = 'E_SKU';
  }

  async function startWith(controller: new (...args: never[]) => unknown, logger = silent): Promise<AmqpServer> {
    const server = new AmqpServer({ url: amqpUrl(), logger });
    const moduleRef = await Test.createTestingModule({ controllers: [controller] }).compile();
    const app = moduleRef.createNestMicroservice({ strategy: server, logger: false });
    apps.push(app);
    await app.listen();
    return server;
  }

  async function parked(queue: string): Promise<Record<string, unknown>> {
    const m = await waitFor(
      async () => (await probe.get(parkingLotName(queue))) || undefined,
      10_000,
      `a message in ${parkingLotName(queue)}`,
    );
    return (m.properties.headers ?? {}) as Record<string, unknown>;
  }

  it('the retry copy and the parked message name the thrown error (TypeError: bad sku, then SkuError with its code)', async () => {
    const queue = probe.queue('sku');
    probe.track('queue', retryQueueName(queue, 50));
    probe.track('queue', parkingLotName(queue));
    const retryHeaders = new Recorder<Record<string, unknown>>();

    @Controller()
    class SkuController {
      @EventPattern('sku.check', { queue, retry: { attempts: 2, delays: [50] } })
      check(@Ctx() ctx: AmqpContext) {
        if (ctx.getAttempt() === 1) throw new TypeError('bad sku');
        retryHeaders.push(ctx.getHeaders() as Record<string, unknown>);
        throw new SkuError('sku 42 is unknown');
      }
    }

    await startWith(SkuController);
    await probe.publish('', queue, { sku: 42 }, { headers: { [WarrenHeaders.PATTERN]: 'sku.check' } });

    const [retry] = await retryHeaders.waitFor(1);
    expect(retry).toMatchObject({
      [WarrenHeaders.ATTEMPT]: 2,
      [WarrenHeaders.ERROR_NAME]: 'TypeError',
      [WarrenHeaders.ERROR_MESSAGE]: 'bad sku',
      [WarrenHeaders.ERROR_STATUS]: 'error',
    });
    expect(retry[WarrenHeaders.ERROR_CODE]).toBeUndefined();

    const headers = await parked(queue);
    expect(headers).toMatchObject({
      [WarrenHeaders.ATTEMPT]: 2,
      [WarrenHeaders.ERROR_NAME]: 'SkuError',
      [WarrenHeaders.ERROR_MESSAGE]: 'sku 42 is unknown',
      [WarrenHeaders.ERROR_CODE]: 'E_SKU',
      [WarrenHeaders.ERROR_STATUS]: 'error',
    });
  });

  it('an RpcException is parked with its own message and code, and its name', async () => {
    const queue = probe.queue('sku-rpc-exception');
    probe.track('queue', parkingLotName(queue));

    @Controller()
    class DeclinedController {
      @EventPattern('card.charge', { queue, retry: { attempts: 1 } })
      charge(@Payload() _charge: unknown) {
        throw new RpcException({ status: 'declined', message: 'card declined', code: 'DECLINED' });
      }
    }

    await startWith(DeclinedController);
    await probe.publish('', queue, {}, { headers: { [WarrenHeaders.PATTERN]: 'card.charge' } });
    expect(await parked(queue)).toMatchObject({
      [WarrenHeaders.ERROR_NAME]: 'RpcException',
      [WarrenHeaders.ERROR_MESSAGE]: 'card declined',
      [WarrenHeaders.ERROR_CODE]: 'DECLINED',
      [WarrenHeaders.ERROR_STATUS]: 'declined',
    });
  });

  it('without a retry policy, the nack is logged with the thrown error', async () => {
    const queue = probe.queue('sku-no-retry');
    const errors = new Recorder<string>();
    const logger: Logger = { ...silent, error: (m: string) => errors.push(m) };

    @Controller()
    class NoRetryController {
      @EventPattern('sku.plain', { queue })
      check(@Payload() _sku: unknown) {
        throw new TypeError('bad sku');
      }
    }

    await startWith(NoRetryController, logger);
    await probe.publish('', queue, {}, { headers: { [WarrenHeaders.PATTERN]: 'sku.plain' } });
    const [line] = await errors.waitFor(1);
    expect(line).toContain("handler for 'sku.plain' failed; message nacked without requeue");
    expect(line).toMatch(/: TypeError: bad sku$/);
  });

  it("an RPC caller still gets Nest's convention: a plain Error is an 'Internal server error', an RpcException its message", async () => {
    const queue = probe.queue('sku-rpc');

    @Controller()
    class RpcSkuController {
      @MessagePattern('sku.get', { queue: { name: queue, durable: false } })
      get(@Payload() q: { kind: string }) {
        if (q.kind === 'plain') throw new TypeError('bad sku');
        throw new RpcException('no such sku');
      }
    }

    await startWith(RpcSkuController);
    const client = new AmqpClient({ url: amqpUrl(), logger: silent, queue, timeout: 5000 });
    apps.push(client);
    const plain = await rejection(firstValueFrom(client.send('sku.get', { kind: 'plain' })));
    expect(plain).toMatchObject({ status: 'error', message: 'Internal server error' });
    const rpc = await rejection(firstValueFrom(client.send('sku.get', { kind: 'rpc' })));
    expect(rpc).toMatchObject({ status: 'error', message: 'no such sku' });
  });
});
