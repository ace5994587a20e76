// Code of docs/migrating-from-nest-rmq.md (the same app on Warren). Each `#region` is shown there verbatim
// (test/unit/docs-guides.spec.ts checks it).
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPattern,
  MessagePattern,
  Payload,
  RpcException,
  type AsyncMicroserviceOptions,
} from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { AmqpClient, AmqpController, AmqpModule, AmqpServer, InjectAmqpClient } from 'nestjs-warren';

interface Order {
  id: number;
  total: number;
}

const orders = new Map<number, Order>();

// #region controller
@AmqpController({ queue: 'orders', prefetch: 10, retry: { attempts: 3, delays: [1_000, 5_000] } })
export class OrdersController {
  @MessagePattern('orders.get')
  get(@Payload() query: { id: number }): Order {
    // Acked once the reply is on its way; nothing to do by hand.
    const order = orders.get(query.id);
    if (!order) throw new RpcException(`order ${query.id} not found`);
    return order;
  }

  @EventPattern('order.created')
  async created(@Payload() order: Order): Promise<void> {
    // Acked when this resolves; a throw is retried after 1 s, then 5 s, then parked in orders.parking-lot.
    await charge(order);
  }
}
// #endregion

// #region service
@Injectable()
export class OrdersService {
  constructor(@InjectAmqpClient() private readonly client: AmqpClient) {}

  find(id: number): Promise<Order> {
    return firstValueFrom(this.client.send<Order>('orders.get', { id }));
  }

  async announce(order: Order): Promise<void> {
    await firstValueFrom(this.client.emit('order.created', order), { defaultValue: undefined });
  }
}
// #endregion

// #region module
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://guest:guest@127.0.0.1:5672',
      // Like the RMQ client: requests and events go to the `orders` queue through the default exchange.
      client: { queue: 'orders' },
    }),
  ],
  controllers: [OrdersController],
  providers: [OrdersService],
})
export class AppModule {}
// #endregion

// #region main
export async function main(): Promise<void> {
  // The DI-managed server shares the module's connections (and its client, publishers, health).
  const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(AppModule, {
    inject: [AmqpServer],
    useFactory: (server: AmqpServer) => ({ strategy: server }),
  });
  app.enableShutdownHooks();
  await app.listen();
}
// #endregion

// #region exchange
// A step further: publish to a topic exchange with the pattern as routing key, so that other services can bind
// queues of their own (pub/sub) instead of sharing one queue.
@AmqpController({ queue: 'billing.orders', exchange: { name: 'orders', type: 'topic' } })
export class BillingController {
  @EventPattern('order.created')
  async charge(@Payload() order: Order): Promise<void> {
    await charge(order);
  }
}
// and in the module: client: { exchange: 'orders' }
// #endregion

async function charge(order: Order): Promise<void> {
  await Promise.resolve(order);
}
