import { BaseRpcContext } from '@nestjs/microservices';
import type { DecodedProperties, FieldTable, MessageFields, SessionMessage } from '../../amqp';
import { WarrenHeaders } from '../amqp.constants';

/**
 * How a delivery is settled; one per message, shared by the server and the context. Not exported from the package,
 * yet left in the published declarations: the `AmqpContext` type refers to it.
 */
export interface DeliverySettlement {
  readonly settled: boolean;
  ack(): void;
  nack(requeue: boolean): void;
  reject(requeue: boolean): void;
}

/** What an {@link AmqpContext} is made of: the message, its pattern, its queue and how it is settled. */
export type AmqpContextArgs = [message: SessionMessage, pattern: string, queue: string, settlement: DeliverySettlement];

/**
 * What `@Ctx()` gives a Warren handler: the message (body, properties, fields), its pattern and routing key, and,
 * for handlers in `ack: 'manual'` mode, `ack()` / `nack()` / `reject()`. Settling twice is a no-op.
 */
export class AmqpContext extends BaseRpcContext<AmqpContextArgs> {
  /** @internal made by the server for each delivery */
  constructor(args: AmqpContextArgs) {
    super(args);
  }

  /** The raw message: `body`, `properties`, `fields`. */
  getMessage(): SessionMessage {
    return this.args[0];
  }

  /** The pattern the message was dispatched by (routing key, or `x-warren-pattern`). */
  getPattern(): string {
    return this.args[1];
  }

  /** The queue it was consumed from. */
  getQueue(): string {
    return this.args[2];
  }

  /** The routing key it was published with. */
  getRoutingKey(): string {
    return this.args[0].fields.routingKey;
  }

  /** The exchange it was published to (`''`: the default exchange). */
  getExchange(): string {
    return this.args[0].fields.exchange;
  }

  /** Its basic properties: `contentType`, `messageId`, `correlationId`, `replyTo`, `timestamp`, `headers`... */
  getProperties(): DecodedProperties {
    return this.args[0].properties;
  }

  /** Its delivery fields: delivery tag, redelivered, exchange, routing key, consumer tag. */
  getFields(): MessageFields {
    return this.args[0].fields;
  }

  /** Its headers (`{}` when it has none). */
  getHeaders(): FieldTable {
    return this.args[0].properties.headers ?? {};
  }

  /** The broker delivered it before and it was not acked (a crash or a lost connection mid-handling). */
  isRedelivered(): boolean {
    return this.args[0].fields.redelivered;
  }

  /** 1 for a first delivery; counts retries under a retry policy (`x-warren-attempt`). */
  getAttempt(): number {
    const raw = this.getHeaders()[WarrenHeaders.ATTEMPT];
    const n = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : Number(raw ?? 1);
    return Number.isFinite(n) && n >= 1 ? n : 1;
  }

  /** Its offset in the stream it was consumed from (`x-stream-offset`); undefined for other queues. */
  getStreamOffset(): number | undefined {
    return this.args[0].streamOffset;
  }

  /** The broker's delivery count (`x-delivery-count`, quorum queues): 0 on a first delivery; undefined elsewhere. */
  getDeliveryCount(): number | undefined {
    const raw = this.getHeaders()['x-delivery-count'];
    return typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : undefined;
  }

  /** Whether the message was acked, nacked or rejected already. */
  get isSettled(): boolean {
    return this.args[3].settled;
  }

  /** Acknowledge the message (`ack: 'manual'` handlers). A no-op once settled. */
  ack(): void {
    this.args[3].ack();
  }

  /** Negative acknowledgement; `requeue` defaults to true (AMQP's default). */
  nack(options: { requeue?: boolean } = {}): void {
    this.args[3].nack(options.requeue ?? true);
  }

  /** Reject the message as bad; `requeue` defaults to false (dead-lettered if the queue has a DLX). */
  reject(options: { requeue?: boolean } = {}): void {
    this.args[3].reject(options.requeue ?? false);
  }
}
