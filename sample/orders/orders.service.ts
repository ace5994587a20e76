import { Injectable } from '@nestjs/common';
import { InjectPublisher, type AmqpPublisher } from '../../lib/nest';
import type { Order } from './order';

/** Keeps orders in memory and announces new ones with an `order.created` event. */
@Injectable()
export class OrdersService {
  private readonly orders = new Map<number, Order>();

  constructor(@InjectPublisher('orders') private readonly publisher: AmqpPublisher) {}

  /** Stores the order and publishes `order.created`; resolves once the broker confirmed the event. */
  async create(order: Order): Promise<Order> {
    this.orders.set(order.id, order);
    await this.publisher.publish('order.created', order, { messageId: `order-${order.id}-created` });
    return order;
  }

  find(id: number): Order | undefined {
    return this.orders.get(id);
  }
}
