import { Controller } from '@nestjs/common';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { ORDERS_EXCHANGE, ORDERS_RPC_QUEUE } from '../topology';
import type { Order } from './order';
import { OrdersService } from './orders.service';

@Controller()
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /** RPC: `client.send('orders.get', { id })`. */
  @MessagePattern('orders.get', { queue: { name: ORDERS_RPC_QUEUE, durable: false }, exchange: ORDERS_EXCHANGE })
  get(@Payload() query: { id: number }): Order {
    const order = this.orders.find(query.id);
    if (!order) throw new RpcException({ status: 'error', message: `order ${query.id} not found`, code: 'NOT_FOUND' });
    return order;
  }
}
