import { Ctx, Payload } from '@nestjs/microservices';
import { AmqpController, AmqpEventPattern, type AmqpContext } from '../../lib/nest';
import { Journal } from '../journal';
import type { Order } from '../orders/order';
import { ORDER_HISTORY_STREAM, ORDERS_EXCHANGE } from '../topology';

/**
 * The order history is a stream queue: it keeps every order event for a week (`maxAge`), and a consumer reads it
 * from where it chooses — here from the first message kept. After a reconnect it resumes after what it processed,
 * it does not read the stream from 'first' again. Each message carries its offset in the stream.
 */
@AmqpController({
  queue: { name: ORDER_HISTORY_STREAM, type: 'stream', maxAge: '7D' },
  exchange: ORDERS_EXCHANGE,
})
export class OrderHistoryController {
  constructor(private readonly journal: Journal) {}

  @AmqpEventPattern('order.created', { offset: 'first' })
  remember(@Payload() order: Order, @Ctx() ctx: AmqpContext): void {
    this.journal.record({ kind: 'remembered', orderId: order.id, offset: ctx.getStreamOffset() });
  }
}
