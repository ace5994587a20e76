import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { UnroutableError } from '../../lib/amqp';
import { AmqpClient, AmqpController, AmqpRecordBuilder, type AmqpContext, AmqpEventPattern } from '../../lib/nest';
import { amqpUrl, uniqueName } from '../support/broker';
import { BrokerProbe, closeAll, Recorder, rejection, startMicroservice } from '../support/nest-support';

jest.setTimeout(30_000);

const orders = uniqueName('nest-ev-orders');
const billingQueue = uniqueName('nest-ev-billing');
const shippingQueue = uniqueName('nest-ev-shipping');
const workQueue = uniqueName('nest-ev-work');
const auditQueue = uniqueName('nest-ev-audit');
const docs = uniqueName('nest-ev-docs');
const pdfQueue = uniqueName('nest-ev-pdf');
const strictQueue = uniqueName('nest-ev-strict');
const strictDlq = uniqueName('nest-ev-strict-dlq');

const billing = new Recorder<unknown>();
const shipping = new Recorder<unknown>();
const work = new Recorder<{ instance: string; n: number }>();
const audit = new Recorder<{ handler: string; routingKey: string }>();
const pdfs = new Recorder<{ name: string; format: unknown }>();

const ordersExchange = { name: orders, type: 'topic', durable: false, autoDelete: false } as const;

@AmqpController({ queue: { name: billingQueue, durable: false }, exchange: ordersExchange })
class BillingController {
  @EventPattern('order.created')
  onCreated(@Payload() order: unknown) {
    billing.push(order);
  }
}

@AmqpController({ queue: { name: shippingQueue, durable: false }, exchange: ordersExchange })
class ShippingController {
  @EventPattern('order.created')
  onCreated(@Payload() order: unknown) {
    shipping.push(order);
  }
}

/** One service, deployed twice: both instances consume the same queue (competing consumers). */
function workerController(instance: string) {
  @AmqpController({ queue: { name: workQueue, durable: false }, exchange: ordersExchange, prefetch: 1 })
  class WorkerController {
    @EventPattern('order.paid')
    async onPaid(@Payload() n: number) {
      await new Promise((r) => setTimeout(r, 5));
      work.push({ instance, n });
    }
  }
  return WorkerController;
}

const broadcast = new Recorder<string>();

/** Every instance gets its own server-named, exclusive queue: each one receives every event (broadcast). */
function cacheController(instance: string) {
  @AmqpController({ queue: { name: '' }, exchange: ordersExchange })
  class CacheController {
    @AmqpEventPattern('cache.invalidate')
    invalidate(@Payload() key: string) {
      broadcast.push(`${instance}:${key}`);
    }
  }
  return CacheController;
}

@AmqpController({ queue: { name: auditQueue, durable: false }, exchange: ordersExchange })
class AuditController {
  @EventPattern('audit.#')
  any(@Ctx() ctx: AmqpContext) {
    audit.push({ handler: 'audit.#', routingKey: ctx.getRoutingKey() });
  }

  @EventPattern('audit.*.created')
  created(@Ctx() ctx: AmqpContext) {
    audit.push({ handler: 'audit.*.created', routingKey: ctx.getRoutingKey() });
  }

  @EventPattern('audit.user.deleted')
  deleted(@Ctx() ctx: AmqpContext) {
    audit.push({ handler: 'audit.user.deleted', routingKey: ctx.getRoutingKey() });
  }
}

@Controller()
class PdfController {
  @AmqpEventPattern('document.uploaded', {
    queue: { name: pdfQueue, durable: false },
    exchange: { name: docs, type: 'headers', durable: false },
    bindings: [{ arguments: { 'x-match': 'all', format: 'pdf' } }],
  })
  onPdf(@Payload() doc: { name: string }, @Ctx() ctx: AmqpContext) {
    pdfs.push({ name: doc.name, format: ctx.getHeaders().format });
  }
}

@AmqpController({
  queue: { name: strictQueue, durable: false, deadLetterExchange: '', deadLetterRoutingKey: strictDlq },
  topology: { queues: [{ name: strictDlq, durable: false }] },
})
class StrictController {
  @AmqpEventPattern('strict.one') one() {}
  @AmqpEventPattern('strict.two') two() {}
}

describe('Nest events over AMQP', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  let probe: BrokerProbe;
  let client: AmqpClient;

  beforeAll(async () => {
    probe = await BrokerProbe.open();
    for (const q of [billingQueue, shippingQueue, workQueue, auditQueue, pdfQueue, strictQueue, strictDlq]) {
      probe.track('queue', q);
    }
    probe.track('exchange', orders);
    probe.track('exchange', docs);
    for (const controllers of [
      [BillingController],
      [ShippingController],
      [workerController('a')],
      [workerController('b')],
      [AuditController, PdfController, StrictController],
      [cacheController('a')],
      [cacheController('b')],
    ]) {
      apps.push((await startMicroservice({ controllers })).app);
    }
    client = new AmqpClient({ url: amqpUrl(), exchange: orders });
    apps.push(client);
  });

  afterAll(async () => {
    await closeAll(apps);
    await probe?.close();
  });

  it('pub/sub: each consuming service has its own queue and gets every event once', async () => {
    await firstValueFrom(client.emit('order.created', { id: 1 }));
    await firstValueFrom(client.emit('order.created', { id: 2 }));
    await billing.waitFor(2);
    await shipping.waitFor(2);
    expect(billing.items).toEqual([{ id: 1 }, { id: 2 }]);
    expect(shipping.items).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('work queue: two instances of one service compete; each event is handled exactly once', async () => {
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => firstValueFrom(client.emit('order.paid', i))));
    const done = await work.waitFor(n);
    expect(done.map((w) => w.n).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(new Set(done.map((w) => w.instance))).toEqual(new Set(['a', 'b']));
  });

  it('broadcast: server-named exclusive queues give every instance every event', async () => {
    await firstValueFrom(client.emit('cache.invalidate', 'user:42'));
    expect((await broadcast.waitFor(2)).sort()).toEqual(['a:user:42', 'b:user:42']);
  });

  it('topic wildcards: exact beats wildcard, * is one word, # is zero or more', async () => {
    for (const key of ['audit.user.created', 'audit.user.deleted', 'audit.a.b.c', 'audit']) {
      await firstValueFrom(client.emit(key, {}));
    }
    const seen = await audit.waitFor(4);
    expect(Object.fromEntries(seen.map((s) => [s.routingKey, s.handler]))).toEqual({
      'audit.user.created': 'audit.*.created',
      'audit.user.deleted': 'audit.user.deleted',
      'audit.a.b.c': 'audit.#',
      audit: 'audit.#',
    });
  });

  it('headers exchange: only messages whose headers match the binding arrive', async () => {
    const docsClient = new AmqpClient({ url: amqpUrl(), exchange: docs });
    apps.push(docsClient);
    const emit = (name: string, format: string) =>
      firstValueFrom(
        docsClient.emit(
          'document.uploaded',
          new AmqpRecordBuilder({ name }).setOptions({ headers: { format }, mandatory: true }).build(),
        ),
      );
    const err = await rejection(emit('photo.png', 'png'));
    expect(err).toBeInstanceOf(UnroutableError);
    await emit('report.pdf', 'pdf');
    expect(await pdfs.waitFor(1)).toEqual([{ name: 'report.pdf', format: 'pdf' }]);
  });

  it('a standalone amqplib publisher reaches an @EventPattern handler', async () => {
    await probe.publish(orders, 'order.created', { id: 'from-amqplib' });
    await billing.waitFor(3);
    expect(billing.items[2]).toEqual({ id: 'from-amqplib' });
  });

  it('an event with no handler on its queue is nacked without requeue (dead-lettered here)', async () => {
    await probe.publish('', strictQueue, { what: 'nobody handles me' });
    const dead = await waitForMessage(probe, strictDlq);
    expect(JSON.parse(dead.content.toString())).toEqual({ what: 'nobody handles me' });
    expect(await probe.messageCount(strictQueue)).toBe(0);
  });
});

/** Waits for a message in a queue with a consumer (event based). */
async function waitForMessage(probe: BrokerProbe, queue: string) {
  const ch = await probe.connection.createChannel();
  try {
    return await new Promise<import('amqplib').ConsumeMessage>((resolve) => {
      void ch.consume(queue, (m) => m && resolve(m), { noAck: true });
    });
  } finally {
    await ch.close();
  }
}
