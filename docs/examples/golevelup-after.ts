// Code of docs/migrating-from-golevelup.md (the same app on Warren). Each `#region` is shown there verbatim
// (test/unit/docs-guides.spec.ts checks it).
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpController,
  AmqpEventPattern,
  AmqpMessagePattern,
  AmqpModule,
  AmqpPublisher,
  AmqpServer,
  InjectAmqpClient,
  InjectPublisher,
} from 'nestjs-warren';

interface Order {
  id: number;
  total: number;
}

const orders = new Map<number, Order>();

// #region handlers
@Controller()
export class OrdersController {
  @AmqpMessagePattern('orders.get', { queue: 'orders.rpc', exchange: 'orders' })
  get(@Payload() query: { id: number }): Order {
    const order = orders.get(query.id);
    // The caller's send() fails at once with an AmqpRpcError carrying this message and code.
    if (!order) throw new RpcException({ status: 'error', message: `order ${query.id} not found`, code: 'NOT_FOUND' });
    return order;
  }
}

@AmqpController({
  queue: { name: 'billing.orders', deadLetterExchange: 'orders.dead' },
  exchange: 'orders',
  retry: { attempts: 3, delays: [1_000, 10_000] }, // then billing.orders.parking-lot
})
export class BillingController {
  @AmqpEventPattern('order.created')
  async charge(@Payload() order: Order): Promise<void> {
    if (order.total <= 0) throw new RpcException('nothing to charge'); // retried, then parked
    await charge(order);
  }
}
// #endregion

// #region service
@Injectable()
export class OrdersService {
  constructor(
    @InjectAmqpClient() private readonly client: AmqpClient,
    @InjectPublisher('orders') private readonly events: AmqpPublisher,
  ) {}

  find(id: number): Promise<Order> {
    return firstValueFrom(this.client.send<Order>('orders.get', { id }));
  }

  async announce(order: Order): Promise<void> {
    await this.events.publish('order.created', order); // persistent, confirmed, with a message id
  }
}
// #endregion

// #region module
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://guest:guest@127.0.0.1:5672',
      topology: { exchanges: [{ name: 'orders', type: 'topic' }] },
      publishers: [{ name: 'orders', exchange: 'orders' }],
      client: { exchange: 'orders', timeout: 5_000 },
      startupTimeout: 30_000,
    }),
  ],
  controllers: [OrdersController, BillingController],
  providers: [OrdersService],
})
export class AppModule {}
// #endregion

// #region main
export async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // Handlers are Nest microservice handlers: start the DI-managed server beside the HTTP app.
  app.connectMicroservice({ strategy: app.get(AmqpServer) });
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(3000);
}
// #endregion

async function charge(order: Order): Promise<void> {
  await Promise.resolve(order);
}
