import { Ctx, Payload } from '@nestjs/microservices';
import { AmqpController, AmqpEventPattern, type AmqpBatchContext } from '../../lib/nest';
import { Journal } from '../journal';
import type { Order } from '../orders/order';
import { ORDERS_EXCHANGE, REPORTS_QUEUE } from '../topology';

/**
 * The sales report takes orders in batches: up to 20 at a time, or whatever arrived within 100 ms of the first. One
 * handler call per batch, and the batch is acked at once (one `multiple` ack) when the handler returns.
 */
@AmqpController({ queue: { name: REPORTS_QUEUE, durable: false }, exchange: ORDERS_EXCHANGE })
export class SalesReportController {
  constructor(private readonly journal: Journal) {}

  @AmqpEventPattern('order.created', { batch: { size: 20, timeoutMs: 100 } })
  tally(@Payload() orders: Order[], @Ctx() ctx: AmqpBatchContext): void {
    this.journal.record({
      kind: 'tallied',
      orderIds: orders.map((o) => o.id),
      revenue: orders.reduce((sum, o) => sum + o.total, 0),
      // One context per message, in the order of the payloads.
      messageIds: ctx.getMessages().map((m) => m.properties.messageId),
    });
  }
}
