// The app of docs/migrating-from-golevelup.md before the migration, on @golevelup/nestjs-rabbitmq. It lives here to be
// type-checked against the peers bench/ installs (golevelup 9, Nest 11), like the benchmark adapters; each `#region` is
// shown in the guide verbatim (test/unit/docs-guides.spec.ts checks it).
import {
  AmqpConnection,
  MessageHandlerErrorBehavior,
  Nack,
  RabbitMQModule,
  RabbitPayload,
  RabbitRPC,
  RabbitSubscribe,
} from '@golevelup/nestjs-rabbitmq';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

interface Order {
  id: number;
  total: number;
}

const orders = new Map<number, Order>();

// #region handlers
@Injectable()
export class OrdersHandlers {
  @RabbitRPC({ exchange: 'orders', routingKey: 'orders.get', queue: 'orders.rpc' })
  get(@RabbitPayload() query: { id: number }): Order | { error: string } {
    // A throw would requeue the request (the default error behavior) and the caller would time out.
    return orders.get(query.id) ?? { error: `order ${query.id} not found` };
  }

  @RabbitSubscribe({
    exchange: 'orders',
    routingKey: 'order.created',
    queue: 'billing.orders',
    queueOptions: { durable: true, deadLetterExchange: 'orders.dead' },
    errorBehavior: MessageHandlerErrorBehavior.NACK, // the default, REQUEUE, redelivers a failing message forever
  })
  async charge(order: Order): Promise<Nack | void> {
    if (order.total <= 0) return new Nack(false); // refuse without requeue
    await charge(order);
  }
}
// #endregion

// #region service
@Injectable()
export class OrdersService {
  constructor(private readonly amqp: AmqpConnection) {}

  find(id: number): Promise<Order | { error: string }> {
    return this.amqp.request({ exchange: 'orders', routingKey: 'orders.get', payload: { id }, timeout: 5_000 });
  }

  async announce(order: Order): Promise<void> {
    await this.amqp.publish('orders', 'order.created', order, { persistent: true });
  }
}
// #endregion

// #region module
@Module({
  imports: [
    RabbitMQModule.forRoot({
      uri: 'amqp://guest:guest@127.0.0.1:5672',
      exchanges: [{ name: 'orders', type: 'topic' }],
      prefetchCount: 10,
      connectionInitOptions: { wait: true, timeout: 30_000 },
    }),
  ],
  providers: [OrdersHandlers, OrdersService],
})
export class AppModule {}
// #endregion

// #region main
export async function main(): Promise<void> {
  // No transport: the module finds the handlers among the providers when the app boots.
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(3000);
}
// #endregion

async function charge(order: Order): Promise<void> {
  await Promise.resolve(order);
}
