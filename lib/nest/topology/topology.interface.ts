import type { FieldTable } from '../../amqp';

/** The four AMQP exchange types, or a plugin's (`x-delayed-message`, `x-consistent-hash`...). */
export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers' | (string & Record<never, never>);

export interface ExchangeDefinition {
  name: string;
  /** Default 'topic'. */
  type?: ExchangeType;
  /** Default true. */
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: FieldTable;
}

/**
 * A queue. The friendly fields are shorthands for the usual `x-` arguments; `arguments` is merged over them.
 * `name: ''` asks the broker for a name (exclusive, per-instance queues).
 */
export interface QueueDefinition {
  name: string;
  /** Default true for named queues, false for server-named ones. */
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** `x-queue-type`. */
  type?: 'classic' | 'quorum' | 'stream';
  /** `x-dead-letter-exchange` ('' = the default exchange). */
  deadLetterExchange?: string;
  /** `x-dead-letter-routing-key`. */
  deadLetterRoutingKey?: string;
  /** `x-message-ttl`, ms. */
  messageTtl?: number;
  /** `x-expires`, ms: delete the queue after this long unused. */
  expires?: number;
  /** `x-max-length`. */
  maxLength?: number;
  /** `x-max-length-bytes`. */
  maxLengthBytes?: number;
  /** `x-overflow`. */
  overflow?: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  /** `x-single-active-consumer`. */
  singleActiveConsumer?: boolean;
  /** `x-max-priority` (classic queues). */
  maxPriority?: number;
  /** `x-delivery-limit` (quorum queues). */
  deliveryLimit?: number;
  arguments?: FieldTable;
}

/** Messages published to `exchange` with a matching routing key (or headers) reach `queue`. */
export interface QueueBindingDefinition {
  queue: string;
  exchange: string;
  /** Default ''. */
  routingKey?: string;
  /** Headers exchanges: `{ 'x-match': 'all', ... }`. */
  arguments?: FieldTable;
}

/** Exchange-to-exchange binding: messages flow from `source` to `destination`. */
export interface ExchangeBindingDefinition {
  source: string;
  destination: string;
  routingKey?: string;
  arguments?: FieldTable;
}

/** Shared topology, declared once at start-up (module options, server options, `@AmqpController`). */
export interface TopologyDefinition {
  exchanges?: ExchangeDefinition[];
  queues?: QueueDefinition[];
  bindings?: QueueBindingDefinition[];
  exchangeBindings?: ExchangeBindingDefinition[];
}
