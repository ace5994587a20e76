// Code of docs/topology.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { Module } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  AmqpController,
  AmqpEventPattern,
  AmqpModule,
  AmqpSession,
  type ExchangeDefinition,
  type QueueDefinition,
} from 'nestjs-warren';

interface Order {
  id: number;
  total: number;
}

// #region definitions
/** A durable topic exchange: what a bare name (`exchange: 'orders'`) is created as when it does not exist. */
export const ORDERS: ExchangeDefinition = { name: 'orders', type: 'topic' };

/** Where refused or expired messages go. */
export const ORDERS_DEAD: ExchangeDefinition = { name: 'orders.dead', type: 'fanout' };

/** A replicated queue that dead-letters a message after 5 failed deliveries. */
export const BILLING: QueueDefinition = {
  name: 'billing.orders',
  type: 'quorum',
  deadLetterExchange: 'orders.dead',
  deliveryLimit: 5,
};
// #endregion

// #region pub-sub
// Pub/sub: each service has its own queue bound to the exchange, so each gets its own copy of every order.
@AmqpController({ queue: BILLING, exchange: ORDERS })
export class BillingController {
  @AmqpEventPattern('order.created')
  charge(@Payload() order: Order): void {
    console.log(`charging order ${order.id}: ${order.total}`);
  }
}

@AmqpController({ queue: 'notifications.orders', exchange: ORDERS })
export class NotificationsController {
  // Topic wildcards: `*` is one word, `#` zero or more. This handler gets order.created, order.shipped...
  @AmqpEventPattern('order.*')
  notify(@Payload() order: Order): void {
    console.log(`order ${order.id} changed`);
  }
}
// #endregion

// #region work-queue
// Work queue: run this controller in several processes. They all consume `thumbnails`, and RabbitMQ hands each
// message to one of them (competing consumers); prefetch bounds how many unacked messages each one holds.
@AmqpController({ queue: 'thumbnails', prefetch: 4, concurrency: 2 })
export class ThumbnailController {
  @AmqpEventPattern('thumbnail.render')
  async render(@Payload() job: { imageId: string }): Promise<void> {
    await renderThumbnail(job.imageId);
  }
}
// #endregion

// #region broadcast
// Every instance gets every message: a server-named queue (name: '') per process, exclusive and auto-delete, so it
// disappears with the process. After a reconnect it is declared again under a new name and bound again.
@AmqpController({ queue: { name: '' }, exchange: { name: 'cache', type: 'fanout' } })
export class CacheController {
  @AmqpEventPattern('cache.invalidate')
  invalidate(@Payload() key: string): void {
    localCache.delete(key);
  }
}
// #endregion

// #region bindings
@AmqpController({
  queue: 'audit',
  // Instead of the default binding (the handler's exchange, with its pattern as routing key):
  bindings: [
    { exchange: ORDERS, routingKey: 'order.#' },
    { exchange: { name: 'payments', type: 'direct' }, routingKey: 'payment.refunded' },
  ],
})
export class AuditController {
  // Several handlers on one queue are dispatched by routing key; the most specific pattern wins.
  @AmqpEventPattern('order.#')
  order(@Payload() event: unknown): void {
    console.log('order event', event);
  }

  @AmqpEventPattern('payment.refunded')
  refund(@Payload() event: unknown): void {
    console.log('refund', event);
  }
}
// #endregion

// #region module
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://guest:guest@127.0.0.1:5672',
      // Declared at start-up, before any server consumes or any publisher publishes.
      topology: {
        exchanges: [ORDERS, ORDERS_DEAD, { name: 'orders.audit', type: 'fanout', internal: true }],
        queues: [{ name: 'orders.dead-letters', messageTtl: 7 * 24 * 3600 * 1000 }],
        bindings: [{ queue: 'orders.dead-letters', exchange: 'orders.dead' }],
        exchangeBindings: [{ source: 'orders', destination: 'orders.audit', routingKey: '#' }],
      },
    }),
  ],
  controllers: [BillingController, NotificationsController, AuditController],
})
export class AppModule {}
// #endregion

// #region session
export async function declareWithTheSession(session: AmqpSession): Promise<void> {
  await session.exchangeDeclare('orders', 'topic');
  await session.queueDeclare('invoices', { type: 'quorum', deadLetterExchange: 'orders.dead' });
  await session.queueBind('invoices', 'orders', 'order.paid');
  // Recorded once the broker accepted them: declared again, in this order, after every reconnect.
}
// #endregion

const localCache = new Map<string, unknown>();

async function renderThumbnail(imageId: string): Promise<void> {
  await Promise.resolve(imageId);
}
