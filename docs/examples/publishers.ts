// Code of docs/publishers.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { Injectable, Module } from '@nestjs/common';
import {
  AmqpConnection,
  AmqpModule,
  AmqpPublisher,
  AmqpSession,
  BufferOverflowError,
  InjectPublisher,
  NackError,
  TimeoutError,
  UnroutableError,
} from 'nestjs-warren';

interface Order {
  id: number;
  total: number;
}

// #region module
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://guest:guest@127.0.0.1:5672',
      publishers: [
        // Declared at start-up (a definition is declared exactly so; a bare name is used if it exists).
        { name: 'orders', exchange: { name: 'orders', type: 'topic' } },
        // Fails at once with UnroutableError when no queue is bound for the routing key.
        { name: 'audit', exchange: 'audit', routingKey: 'audit.entry', mandatory: true, appId: 'checkout' },
      ],
    }),
  ],
})
export class AppModule {}
// #endregion

// #region feature
@Module({
  // A feature module's own publisher, on the app's default connection (forRoot is imported once, elsewhere).
  imports: [AmqpModule.forFeature({ publishers: [{ name: 'invoices', exchange: 'invoices' }] })],
})
export class InvoicesModule {}
// #endregion

// #region publish
@Injectable()
export class OrdersService {
  constructor(@InjectPublisher('orders') private readonly events: AmqpPublisher) {}

  async created(order: Order): Promise<void> {
    // Resolves when the broker has the message (persistent by default); a stable message id lets consumers
    // recognise a duplicate.
    await this.events.publish('order.created', order, { messageId: `order-${order.id}-created` });
  }
}
// #endregion

// #region errors
export async function publishOrReport(events: AmqpPublisher, order: Order): Promise<'sent' | 'refused'> {
  try {
    await events.publish('order.created', order);
    return 'sent';
  } catch (err) {
    if (err instanceof NackError) return 'refused'; // the broker refused it (e.g. a full queue, reject-publish)
    if (err instanceof UnroutableError) return 'refused'; // mandatory, and no queue took it
    // The broker was unreachable longer than the outage buffer allows: the message was never sent.
    if (err instanceof BufferOverflowError) throw new Error('publish buffer full', { cause: err });
    // No confirm in time: the message may or may not have arrived; publishing it again may duplicate it.
    if (err instanceof TimeoutError) throw new Error(`unknown outcome after ${err.timeoutMs} ms`, { cause: err });
    throw err; // ClosedError: the session was closed first
  }
}
// #endregion

// #region session
export async function publishWithTheSession(): Promise<void> {
  const session = new AmqpSession({
    url: 'amqp://guest:guest@127.0.0.1:5672',
    name: 'checkout',
    publishBuffer: { maxMessages: 50_000, maxBytes: 256 * 1024 * 1024, timeoutMs: 60_000 },
  });
  await session.connect();
  const body = Buffer.from(JSON.stringify({ id: 1, total: 49.9 }));
  await session.publish('orders', 'order.created', body, {
    contentType: 'application/json',
    persistent: true,
    messageId: 'order-1-created',
  });
  await session.close(); // waits for outstanding confirms first
}
// #endregion

// #region channel
export async function publishOnAChannel(): Promise<void> {
  const connection = await AmqpConnection.connect('amqp://guest:guest@127.0.0.1:5672?confirm_timeout_ms=10000');
  const channel = await connection.channel();
  await channel.confirmSelect();
  // Many publishes in flight: each promise settles on its own confirm (or nack, return, close, timeout).
  const sent = Array.from({ length: 1000 }, (_, i) =>
    channel.publish('orders', 'order.created', JSON.stringify({ id: i }), { contentType: 'application/json' }),
  );
  await Promise.all(sent);
  await connection.close();
}
// #endregion
