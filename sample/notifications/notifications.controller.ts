import { Payload } from '@nestjs/microservices';
import { AmqpController, AmqpEventPattern } from '../../lib/nest';
import { Journal } from '../journal';
import type { Order } from '../orders/order';
import { NOTIFICATIONS_QUEUE, ORDERS_EXCHANGE } from '../topology';

/** The second consumer of `order.created`, on its own queue. */
@AmqpController({ queue: { name: NOTIFICATIONS_QUEUE, durable: false }, exchange: ORDERS_EXCHANGE })
export class NotificationsController {
  constructor(private readonly journal: Journal) {}

  @AmqpEventPattern('order.created')
  confirm(@Payload() order: Order): void {
    this.journal.record({ kind: 'emailed', orderId: order.id, to: order.customer });
  }
}
