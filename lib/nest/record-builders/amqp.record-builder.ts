import type { FieldTable } from '../../amqp';

/** Per-message options for `AmqpClient.send`/`emit` and `AmqpPublisher.publish`. */
export interface AmqpRecordOptions {
  /** Target exchange for this message (overrides the client's). */
  exchange?: string;
  /** Routing key for this message (overrides the pattern). */
  routingKey?: string;
  /** Headers for this message, merged over the client's or publisher's. */
  headers?: FieldTable;
  /** Message priority (0-255; used by queues with `maxPriority`). */
  priority?: number;
  /** Per-message TTL, ms. */
  expiration?: string | number;
  /** The `message-id` property. Default: a unique id for events and publisher messages, none for requests. */
  messageId?: string;
  /** The `correlation-id` property. Default for `send`: a unique id per call (replies are matched by it). */
  correlationId?: string;
  /** Default from the client/publisher options. */
  persistent?: boolean;
  /** Fail (UnroutableError) when no queue takes the message. */
  mandatory?: boolean;
  /** The `content-type` property. Default: the serializer's (`application/json`, `text/plain`...). */
  contentType?: string;
  /** The `content-encoding` property. Default: the serializer's (none). */
  contentEncoding?: string;
  /** The `type` property (a message type name of your own). */
  type?: string;
  /** The `app-id` property. Default: the client's or publisher's `appId`. */
  appId?: string;
  /** The `user-id` property; RabbitMQ checks it against the connection's user. */
  userId?: string;
  /** The `timestamp` property (a Date, or ms since the epoch). Default: now, except for requests (none). */
  timestamp?: Date | number;
  /** `send` only: reply timeout for this call, ms. */
  timeout?: number;
}

/** A payload with per-message options; what `AmqpRecordBuilder` builds. */
export class AmqpRecord<TData = unknown> {
  constructor(
    /** The payload, serialized as usual. */
    readonly data: TData,
    /** The per-message options. */
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

  /** Merge `options` over those set before. */
  setOptions(options: AmqpRecordOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Replace the payload. */
  setData(data: TData): this {
    this.data = data;
    return this;
  }

  /** The record to pass as `data` to `send`, `emit` or `publish`. */
  build(): AmqpRecord<TData> {
    return new AmqpRecord(this.data as TData, this.options);
  }
}

/** Splits a payload into data and record options. */
export function unwrapRecord(payload: unknown): { data: unknown; options: AmqpRecordOptions } {
  if (payload instanceof AmqpRecord) return { data: payload.data, options: payload.options ?? {} };
  return { data: payload, options: {} };
}
