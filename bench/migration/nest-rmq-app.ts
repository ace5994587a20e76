// The app of docs/migrating-from-nest-rmq.md before the migration, on Nest's RMQ transport. It lives here to be
// type-checked against the peers bench/ installs (Nest 11, amqplib), like the benchmark adapters; each `#region` is
// shown in the guide verbatim (test/unit/docs-guides.spec.ts checks it).
import { Controller, Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxy,
  ClientsModule,
  Ctx,
  EventPattern,
  MessagePattern,
  Payload,
  RmqContext,
  RpcException,
  Transport,
  type MicroserviceOptions,
} from '@nestjs/microservices';
import type { Channel, Message } from 'amqplib';
import { firstValueFrom } from 'rxjs';

interface Order {
  id: number;
  total: number;
}

const orders = new Map<number, Order>();

// #region controller
@Controller()
export class OrdersController {
  @MessagePattern('orders.get')
  get(@Payload() query: { id: number }, @Ctx() ctx: RmqContext): Order {
    const channel = ctx.getChannelRef() as Channel;
    channel.ack(ctx.getMessage() as Message); // with noAck: false, every handler acks by hand
    const order = orders.get(query.id);
    if (!order) throw new RpcException(`order ${query.id} not found`);
    return order;
  }

  @EventPattern('order.created')
  async created(@Payload() order: Order, @Ctx() ctx: RmqContext): Promise<void> {
    const channel = ctx.getChannelRef() as Channel;
    try {
      await charge(order);
      channel.ack(ctx.getMessage() as Message);
    } catch {
      channel.nack(ctx.getMessage() as Message, false, false); // a retry would be yours to build
    }
  }
}
// #endregion

// #region service
@Injectable()
export class OrdersService {
  constructor(@Inject('ORDERS') private readonly client: ClientProxy) {}

  find(id: number): Promise<Order> {
    return firstValueFrom(this.client.send<Order>('orders.get', { id }));
  }

  async announce(order: Order): Promise<void> {
    await firstValueFrom(this.client.emit('order.created', order), { defaultValue: undefined });
  }
}
// #endregion

// #region module
const rmq = { urls: ['amqp://guest:guest@127.0.0.1:5672'], queue: 'orders', queueOptions: { durable: true } };

@Module({
  imports: [ClientsModule.register([{ name: 'ORDERS', transport: Transport.RMQ, options: rmq }])],
  controllers: [OrdersController],
  providers: [OrdersService],
})
export class AppModule {}
// #endregion

// #region main
export async function main(): Promise<void> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(AppModule, {
    transport: Transport.RMQ,
    options: { ...rmq, noAck: false, prefetchCount: 10 },
  });
  await app.listen();
}
// #endregion

async function charge(order: Order): Promise<void> {
  await Promise.resolve(order);
}
