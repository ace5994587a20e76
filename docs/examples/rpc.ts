// Code of docs/rpc.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { Controller, Injectable, Module } from '@nestjs/common';
import { ClientsModule, Payload, RpcException } from '@nestjs/microservices';
import * as amqplib from 'amqplib';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpMessagePattern,
  AmqpModule,
  AmqpRecordBuilder,
  AmqpRpcError,
  InjectAmqpClient,
  TimeoutError,
  UnroutableError,
} from 'nestjs-warren';

interface Order {
  id: number;
  item: string;
}

@Injectable()
export class OrdersRepository {
  private readonly orders = new Map<number, Order>([[1, { id: 1, item: 'keyboard' }]]);

  find(id: number): Order | undefined {
    return this.orders.get(id);
  }
}

// #region server
@Controller()
export class OrdersController {
  constructor(private readonly orders: OrdersRepository) {}

  // The pattern is the routing key: requests to exchange `orders` with key `orders.get` land in `orders.rpc`.
  @AmqpMessagePattern('orders.get', { queue: 'orders.rpc', exchange: 'orders' })
  get(@Payload() query: { id: number }): Order {
    const order = this.orders.find(query.id);
    if (!order) throw new RpcException({ status: 'error', message: `order ${query.id} not found`, code: 'NOT_FOUND' });
    return order;
  }
}
// #endregion

// #region client
@Injectable()
export class OrdersGateway {
  constructor(@InjectAmqpClient() private readonly client: AmqpClient) {}

  async find(id: number): Promise<Order | null> {
    try {
      return await firstValueFrom(this.client.send<Order>('orders.get', { id }));
    } catch (err) {
      if (err instanceof AmqpRpcError && err.code === 'NOT_FOUND') return null; // the handler's RpcException
      if (err instanceof TimeoutError) throw new Error(`orders did not answer within ${err.timeoutMs} ms`);
      if (err instanceof UnroutableError) throw new Error('no queue is bound for orders.get: is orders running?');
      throw err;
    }
  }
}
// #endregion

// #region module
@Module({
  imports: [
    AmqpModule.forRoot({
      url: 'amqp://guest:guest@127.0.0.1:5672',
      // The injectable AmqpClient: requests go to `orders`, replies come back by direct reply-to.
      client: { exchange: 'orders', timeout: 5_000 },
    }),
  ],
  controllers: [OrdersController],
  providers: [OrdersRepository, OrdersGateway],
})
export class OrdersModule {}
// #endregion

// #region record
export function findUrgently(client: AmqpClient, id: number): Promise<Order> {
  const request = new AmqpRecordBuilder({ id }).setOptions({ timeout: 1_000, priority: 9, headers: { tenant: 'eu' } });
  return firstValueFrom(client.send<Order>('orders.get', request.build()));
}
// #endregion

// #region clients-module
@Module({
  imports: [
    ClientsModule.register([
      {
        name: 'ORDERS',
        customClass: AmqpClient,
        options: { url: 'amqp://guest:guest@127.0.0.1:5672', exchange: 'orders', replyTo: 'queue' },
      },
    ]),
  ],
})
export class ReportsModule {}
// #endregion

// #region amqplib
/** A caller that knows nothing about Nest or Warren: plain AMQP, here with amqplib. */
export async function callFromAmqplib(id: number): Promise<Order> {
  const connection = await amqplib.connect('amqp://guest:guest@127.0.0.1:5672');
  try {
    const channel = await connection.createChannel();
    const correlationId = `call-${id}`;
    let onReply!: (m: amqplib.ConsumeMessage) => void;
    const reply = new Promise<amqplib.ConsumeMessage>((resolve) => (onReply = resolve));
    // Direct reply-to: consume the pseudo-queue, then publish the request on the same channel.
    await channel.consume('amq.rabbitmq.reply-to', (m) => m?.properties.correlationId === correlationId && onReply(m), {
      noAck: true,
    });
    channel.publish('orders', 'orders.get', Buffer.from(JSON.stringify({ id })), {
      replyTo: 'amq.rabbitmq.reply-to',
      correlationId,
      contentType: 'application/json',
    });
    const m = await reply; // a real caller also bounds this wait
    const body = JSON.parse(m.content.toString()) as Order & { message?: string };
    // An error reply is flagged by the x-warren-error header; its body is { status, message, code }.
    if (m.properties.headers?.['x-warren-error']) throw new Error(body.message);
    return body;
  } finally {
    await connection.close();
  }
}
// #endregion
