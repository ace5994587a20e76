import { Ctx, Payload, RpcException } from '@nestjs/microservices';
import { AmqpController, AmqpEventPattern, type AmqpContext } from '../../lib/nest';
import { Journal } from '../journal';
import type { Order } from '../orders/order';
import { BILLING_QUEUE, BILLING_RETRY_DELAYS, ORDERS_EXCHANGE } from '../topology';

/**
 * Billing has its own queue on the orders exchange (pub/sub: every service gets every order). A failed charge is
 * retried after 200 ms, then 400 ms; after the third attempt the order goes to `warren.sample.billing.parking-lot`.
 */
@AmqpController({
  queue: { name: BILLING_QUEUE, durable: false },
  exchange: ORDERS_EXCHANGE,
  retry: { attempts: 3, delays: BILLING_RETRY_DELAYS },
})
export class BillingController {
  constructor(private readonly journal: Journal) {}

  @AmqpEventPattern('order.created')
  charge(@Payload() order: Order, @Ctx() ctx: AmqpContext): void {
    const attempt = ctx.getAttempt();
    const failure =
      order.card === 'declined' ? 'card declined' : order.card === 'flaky' && attempt === 1 ? 'gateway timeout' : null;
    if (failure) {
      this.journal.record({ kind: 'charge-failed', orderId: order.id, attempt, reason: failure });
      // An RpcException keeps its message (recorded in the parking lot's headers); Nest reports other errors as
      // 'Internal server error'.
      throw new RpcException({
        status: 'error',
        message: failure,
        code: failure === 'card declined' ? 'DECLINED' : 'TIMEOUT',
      });
    }
    this.journal.record({ kind: 'charged', orderId: order.id, amount: order.total, attempt });
  }
}
