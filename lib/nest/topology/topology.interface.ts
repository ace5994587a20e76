import type { ExchangeSettings, FieldTable, QueueSettings } from '../../amqp';

/** The four AMQP exchange types, or a plugin's (`x-delayed-message`, `x-consistent-hash`...). */
export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers' | (string & Record<never, never>);

/**
 * An exchange: the options of `AmqpSession.exchangeDeclare` (durable by default; `alternateExchange`...) with its
 * name and type. An unknown key is a ConfigError.
 */
export interface ExchangeDefinition extends ExchangeSettings {
  name: string;
  /** Default 'topic'. */
  type?: ExchangeType;
}

/**
 * A queue: the options of `AmqpSession.queueDeclare`, shorthands included (`type: 'quorum'`, `deadLetterExchange`,
 * `messageTtl`...; a shorthand and an `arguments` entry must agree), with its name. An unknown key is a ConfigError.
 * `name: ''` asks the broker for a name (exclusive, auto-delete, non-durable per-instance queues by default).
 */
export interface QueueDefinition extends QueueSettings {
  name: string;
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
