import type { FieldTable } from '../../amqp';

/** Per-message options for `AmqpClient.send`/`emit` and `AmqpPublisher.publish`. */
export interface AmqpRecordOptions {
  /** Target exchange for this message (overrides the client's). */
  exchange?: string;
  /** Routing key for this message (overrides the pattern). */
  routingKey?: string;
  headers?: FieldTable;
  priority?: number;
  /** Per-message TTL, ms. */
  expiration?: string | number;
  messageId?: string;
  correlationId?: string;
  /** Default from the client/publisher options. */
  persistent?: boolean;
  /** Fail (UnroutableError) when no queue takes the message. */
  mandatory?: boolean;
  contentType?: string;
  contentEncoding?: string;
  type?: string;
  appId?: string;
  userId?: string;
  timestamp?: Date | number;
  /** `send` only: reply timeout for this call, ms. */
  timeout?: number;
}

/** A payload with per-message options; what `AmqpRecordBuilder` builds. */
export class AmqpRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    public options?: AmqpRecordOptions,
  ) {}
}

/**
 * Builds an `AmqpRecord`:
 * `client.send('order.get', new AmqpRecordBuilder({ id }).setOptions({ priority: 5, timeout: 2000 }).build())`.
 */
export class AmqpRecordBuilder<TData> {
  private options?: AmqpRecordOptions;

  constructor(private data?: TData) {}

  setOptions(options: AmqpRecordOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  build(): AmqpRecord<TData> {
    return new AmqpRecord(this.data as TData, this.options);
  }
}

/** Splits a payload into data and record options. */
export function unwrapRecord(payload: unknown): { data: unknown; options: AmqpRecordOptions } {
  if (payload instanceof AmqpRecord) return { data: payload.data, options: payload.options ?? {} };
  return { data: payload, options: {} };
}
