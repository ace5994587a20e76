// Code of docs/events-and-retries.md: each `#region` is shown there verbatim (test/unit/docs-guides.spec.ts checks it).
import { Injectable } from '@nestjs/common';
import { Ctx, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  AmqpClient,
  AmqpContext,
  AmqpController,
  AmqpEventPattern,
  AmqpSession,
  InjectAmqpClient,
  parkingLotName,
  WarrenHeaders,
} from 'nestjs-warren';

interface Order {
  id: number;
  total: number;
}

@Injectable()
export class Payments {
  async charge(order: Order, idempotencyKey: string | undefined): Promise<void> {
    await Promise.resolve([order, idempotencyKey]);
  }
}

@Injectable()
export class Ledger {
  async record(entry: unknown): Promise<boolean> {
    return Promise.resolve(entry !== undefined);
  }
}

// #region emit
@Injectable()
export class Checkout {
  constructor(@InjectAmqpClient() private readonly client: AmqpClient) {}

  async placed(order: Order): Promise<void> {
    // Resolves once the broker has confirmed the event (persistent, with a message id and a timestamp).
    await firstValueFrom(this.client.emit('order.created', order), { defaultValue: undefined });
  }
}
// #endregion

// #region retry
@AmqpController({
  queue: 'billing.orders',
  exchange: 'orders',
  // 4 deliveries in all: the first, then retries after 1 s, 10 s and 60 s; then billing.orders.parking-lot.
  retry: { attempts: 4, delays: [1_000, 10_000, 60_000] },
})
export class BillingController {
  constructor(private readonly payments: Payments) {}

  @AmqpEventPattern('order.created')
  async charge(@Payload() order: Order, @Ctx() ctx: AmqpContext): Promise<void> {
    // The message id is the same on every attempt: a safe idempotency key.
    await this.payments.charge(order, ctx.getProperties().messageId);
  }

  @AmqpEventPattern('order.refunded', { retry: { attempts: 6, backoff: { initial: 500, factor: 2, max: 30_000 } } })
  async refund(@Payload() order: Order, @Ctx() ctx: AmqpContext): Promise<void> {
    if (ctx.getAttempt() > 3) console.warn(`refund of order ${order.id}: attempt ${ctx.getAttempt()}`);
    // Thrown errors are retried. An RpcException keeps its message and code in the parking lot's headers;
    // Nest reports any other error as 'Internal server error'.
    if (order.total <= 0) throw new RpcException({ status: 'error', message: 'nothing to refund', code: 'EMPTY' });
    await this.payments.charge({ ...order, total: -order.total }, ctx.getProperties().messageId);
  }
}
// #endregion

// #region manual
@AmqpController({ queue: 'ledger.orders', exchange: 'orders', ack: 'manual' })
export class LedgerController {
  constructor(private readonly ledger: Ledger) {}

  @AmqpEventPattern('order.#')
  async record(@Payload() event: unknown, @Ctx() ctx: AmqpContext): Promise<void> {
    if (await this.ledger.record(event)) ctx.ack();
    else ctx.reject(); // no requeue: dead-lettered if the queue has a dead-letter exchange
  }
}
// #endregion

// #region replay
/**
 * Moves every message of `queue`'s parking lot back to `queue`, for a fresh round of attempts. Publishing to the queue
 * itself (through the default exchange) reaches this queue's handlers only, not every queue bound to the original
 * exchange; the pattern travels in the `x-warren-pattern` header the parking lot copy carries.
 */
export async function replayParkingLot(session: AmqpSession, queue: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const message = await session.get(parkingLotName(queue));
    if (!message) return moved;
    const { [WarrenHeaders.ATTEMPT]: _attempt, ...headers } = message.properties.headers ?? {};
    await session.publish('', queue, message.body, { ...message.properties.toJSON(), headers }); // confirmed
    message.ack();
    moved++;
  }
}
// #endregion
