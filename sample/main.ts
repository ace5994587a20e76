import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { AsyncMicroserviceOptions } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { AmqpSession } from '../lib';
import { AmqpClient, AmqpServer, parkingLotName, retryQueueName, WarrenHeaders } from '../lib';
import { AppModule } from './app.module';
import { Journal } from './journal';
import type { Order } from './orders/order';
import { OrdersService } from './orders/orders.service';
import {
  BILLING_QUEUE,
  BILLING_RETRY_DELAYS,
  NOTIFICATIONS_QUEUE,
  ORDERS_EXCHANGE,
  ORDER_HISTORY_STREAM,
  ORDERS_RPC_QUEUE,
  REPORTS_QUEUE,
} from './topology';
import { startTracing } from './tracing';

const say = (line: string) => console.log(`[sample] ${line}`);

async function main(): Promise<void> {
  // Tracing first, as in any application: with the OpenTelemetry SDK installed, every message is traced.
  const tracing = startTracing();
  say(tracing ? 'tracing on (OpenTelemetry SDK, in-memory exporters)' : 'tracing off (no OpenTelemetry SDK installed)');
  // The DI-managed AmqpServer shares the module's connection (publishers, client, health).
  const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(AppModule, {
    inject: [AmqpServer],
    useFactory: (server: AmqpServer) => ({ strategy: server }),
    logger: process.env.SAMPLE_LOGS ? undefined : false,
  });
  app.enableShutdownHooks();
  await app.listen();
  say('orders, billing, notifications, reports and the order history are listening on RabbitMQ');

  const session = app.get(AmqpSession);
  const orders = app.get(OrdersService);
  const journal = app.get(Journal);
  const client = app.get(AmqpClient);
  const parkingLot = parkingLotName(BILLING_QUEUE);
  try {
    // Watch the parking lot: that is where billing's retry policy puts what it gave up on.
    const parked = new Promise<{ orderId: number; reason: string; attempts: unknown }>((resolve) => {
      void session.consume(
        parkingLot,
        (m) => {
          const order = JSON.parse(m.body.toString()) as Order;
          const headers = m.properties.headers ?? {};
          resolve({
            orderId: order.id,
            reason: String(headers[WarrenHeaders.ERROR_MESSAGE]),
            attempts: headers[WarrenHeaders.ATTEMPT],
          });
        },
        { noAck: true },
      );
    });

    const placed: Order[] = [
      { id: 1, customer: 'ada@example.com', item: 'keyboard', total: 49.9, card: 'ok' },
      { id: 2, customer: 'grace@example.com', item: 'monitor', total: 189, card: 'flaky' },
      { id: 3, customer: 'linus@example.com', item: 'laptop', total: 1299, card: 'declined' },
    ];
    for (const order of placed) await orders.create(order);
    say(`published order.created for orders ${placed.map((o) => `#${o.id}`).join(', ')} (confirmed by the broker)`);

    const fetched = await firstValueFrom(client.send<Order>('orders.get', { id: 1 }));
    say(`RPC orders.get {id: 1} -> #${fetched.id} ${fetched.item}, ${fetched.total} (for ${fetched.customer})`);
    const missing = await firstValueFrom(client.send('orders.get', { id: 99 })).catch((err: Error) => err.message);
    say(`RPC orders.get {id: 99} -> error "${String(missing)}"`);

    await journal.until(() => journal.of('emailed').length === 3, 'three confirmation emails');
    say(
      `notifications queue: emailed ${journal
        .of('emailed')
        .map((e) => e.to)
        .join(', ')}`,
    );
    const tallied = () => journal.of('tallied').flatMap((t) => t.orderIds);
    await journal.until(() => tallied().length === 3, 'three orders in the sales report');
    const batches = journal.of('tallied');
    const sizes = batches.map((b) => b.orderIds.length).join(' + ');
    const revenue = batches.reduce((sum, b) => sum + b.revenue, 0).toFixed(2);
    const ids = tallied()
      .map((id) => `#${id}`)
      .join(', ');
    say(`reports queue: orders ${ids} tallied in ${batches.length} batch call(s) of ${sizes}, revenue ${revenue}`);
    await journal.until(() => journal.of('remembered').length === 3, 'three orders in the order history stream');
    const history = journal
      .of('remembered')
      .map((r) => `#${r.orderId} at offset ${String(r.offset)}`)
      .join(', ');
    say(`order-history stream (read from 'first'): ${history}`);
    await journal.until(() => journal.of('charged').length === 2, 'two charges');
    const retried = journal.of('charged').find((c) => c.orderId === 2);
    say(
      `billing queue: charged #1 on attempt 1; #2 failed once (gateway timeout) and was charged on attempt ${retried?.attempt}`,
    );
    const p = await withTimeout(parked, 10_000, 'the parking lot');
    const tries = journal.of('charge-failed').filter((f) => f.orderId === 3).length;
    say(
      `billing gave up on #${p.orderId} after ${String(p.attempts)} attempts (${tries} calls, "${p.reason}") -> ${parkingLot}`,
    );
  } finally {
    // Stop consuming first (in-flight handlers finish), then remove the sample's queues, then shut down.
    await app.get(AmqpServer).close();
    await cleanUp(session, parkingLot);
    await app.close();
  }
  say('graceful shutdown: consumers cancelled, in-flight handlers finished, confirms settled, connections closed');
  if (tracing) {
    say('the trace of RPC orders.get {id: 1}:');
    for (const line of tracing.traceWhere((spans) => spans.some((s) => s.name === 'send orders.get'))) say(`  ${line}`);
    // Retries keep the message's trace headers: every attempt is a span of the event's one trace.
    const billing = `process ${BILLING_QUEUE}`;
    say('the trace of order.created #2 (billing failed once, then succeeded):');
    const retried = tracing.traceWhere((spans) => {
      const attempts = spans.filter((s) => s.name === billing);
      return attempts.length === 2 && attempts.filter((s) => s.failed).length === 1;
    });
    for (const line of retried) say(`  ${line}`);
    const m = await tracing.metrics();
    const n = (name: string) => m.get(name) ?? 0;
    say(
      `metrics: ${n('messaging.client.sent.messages')} sent, ${n('messaging.client.consumed.messages')} consumed, ` +
        `${n('messaging.process.duration')} processed, ${n('warren.messages.parked')} parked`,
    );
    await tracing.shutdown();
  }
}

/** Removes what the sample declared, so that every run starts from nothing. */
async function cleanUp(session: AmqpSession, parkingLot: string): Promise<void> {
  const queues = [
    ORDERS_RPC_QUEUE,
    BILLING_QUEUE,
    NOTIFICATIONS_QUEUE,
    REPORTS_QUEUE,
    ORDER_HISTORY_STREAM,
    parkingLot,
    ...BILLING_RETRY_DELAYS.map((d) => retryQueueName(BILLING_QUEUE, d)),
  ];
  for (const q of queues) await session.queueDelete(q).catch(() => undefined);
  await session.exchangeDelete(ORDERS_EXCHANGE.name).catch(() => undefined);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`[sample] FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
