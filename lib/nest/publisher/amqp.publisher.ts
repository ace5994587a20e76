import { type AmqpSession, type FieldTable, type PublishOptions } from '../../amqp';
import { withTimeout } from '../../amqp/deferred';
import type { AmqpPublisherDefinition } from '../amqp-options.interface';
import { WarrenHeaders } from '../amqp.constants';
import { MessageIdSource } from '../message-id';
import type { AmqpRecordOptions } from '../record-builders/amqp.record-builder';
import type { AmqpSerializer } from '../serialization/amqp-serializer.interface';
import { DefaultSerializer } from '../serialization/default.serializer';
import { warrenTelemetry } from '../telemetry/telemetry';

/** Per-call options of `AmqpPublisher.publish` (the record options minus `exchange` and `timeout`). */
export type PublishCallOptions = Omit<AmqpRecordOptions, 'exchange' | 'timeout'> & {
  /** The pattern, when it differs from the routing key (sent in `x-warren-pattern`). */
  pattern?: string;
};

/**
 * Publishes to one exchange, with a confirm: `publish` resolves when the broker has the message and rejects with
 * NackError, UnroutableError (mandatory) or, after an outage longer than the session's publish buffer allows,
 * TimeoutError / BufferOverflowError. Inject it with `@InjectPublisher(name)`.
 */
export class AmqpPublisher {
  /** The publisher's name (its definition's). */
  readonly name: string;
  /** The exchange it publishes to. */
  readonly exchange: string;
  private readonly serializer: AmqpSerializer;
  /** Set once `ready` resolved: later publishes skip the declaration wait (and its timer). */
  private declared = false;
  private readonly messageIds = new MessageIdSource();
  private readonly telemetry = warrenTelemetry();

  constructor(
    private readonly session: AmqpSession,
    private readonly definition: AmqpPublisherDefinition,
    /** Resolves once the publisher's exchange is declared (given by the module, which declares it). */
    private readonly ready: Promise<void> = Promise.resolve(),
    serializer?: AmqpSerializer,
    private readonly readyTimeoutMs = 30_000,
  ) {
    this.name = definition.name;
    this.exchange = typeof definition.exchange === 'string' ? definition.exchange : definition.exchange.name;
    this.serializer = definition.serializer ?? serializer ?? new DefaultSerializer();
    ready.then(
      () => (this.declared = true),
      () => undefined,
    );
  }

  /** Publish `payload` with `routingKey` (default: the definition's). Resolves on the broker's confirm. */
  publish(routingKey: string | undefined, payload: unknown, options: PublishCallOptions = {}): Promise<void> {
    const key = routingKey ?? options.routingKey ?? this.definition.routingKey ?? '';
    let body: Buffer;
    let properties: PublishOptions;
    try {
      ({ body, properties } = this.build(key, payload, options));
    } catch (err) {
      return Promise.reject(err);
    }
    const trace = this.telemetry.publish(this.exchange, key, properties, body.length);
    const published = this.declared
      ? this.session.publish(this.exchange, key, body, properties)
      : this.whenDeclared().then(() => this.session.publish(this.exchange, key, body, properties));
    trace?.track(published);
    return published;
  }

  private build(
    key: string,
    payload: unknown,
    options: PublishCallOptions,
  ): { body: Buffer; properties: PublishOptions } {
    const serialized = this.serializer.serialize(payload);
    // Only a table when there is something in it: an empty one still costs an encode and decodes on both ends.
    let headers: FieldTable | undefined =
      this.definition.headers === undefined && options.headers === undefined
        ? undefined
        : { ...this.definition.headers, ...options.headers };
    if (options.pattern !== undefined && options.pattern !== key)
      (headers ??= {})[WarrenHeaders.PATTERN] = options.pattern;
    const expiration = options.expiration;
    const timestamp = options.timestamp ?? new Date();
    const properties: PublishOptions = {
      contentType: options.contentType ?? serialized.contentType,
      contentEncoding: options.contentEncoding ?? serialized.contentEncoding,
      headers,
      persistent: options.persistent ?? this.definition.persistent ?? true,
      mandatory: options.mandatory ?? this.definition.mandatory ?? false,
      priority: options.priority,
      expiration: expiration === undefined ? undefined : String(expiration),
      messageId: options.messageId ?? this.messageIds.next(),
      correlationId: options.correlationId,
      timestamp: timestamp instanceof Date ? timestamp : new Date(timestamp),
      type: options.type,
      appId: options.appId ?? this.definition.appId,
      userId: options.userId,
    };
    return { body: serialized.body, properties };
  }

  private async whenDeclared(): Promise<void> {
    await withTimeout(
      this.ready,
      this.readyTimeoutMs,
      'publish',
      () =>
        `publisher '${this.name}': exchange '${this.exchange}' not declared within ${this.readyTimeoutMs} ms (broker down?)`,
    );
  }
}
