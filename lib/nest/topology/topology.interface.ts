import type { ExchangeSettings, FieldTable, QueueSettings } from '../../amqp';

/** The four AMQP exchange types, or a plugin's (`x-delayed-message`, `x-consistent-hash`...). */
export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers' | (string & Record<never, never>);

/**
 * An exchange: the options of `AmqpSession.exchangeDeclare` (durable by default; `alternateExchange`...) with its
 * name and type. An unknown key is a ConfigError.
 */
export interface ExchangeDefinition extends ExchangeSettings {
  /** The exchange's name. */
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
  /** The queue's name; `''` for a server-named one. */
  name: string;
}

/** Messages published to `exchange` with a matching routing key (or headers) reach `queue`. */
export interface QueueBindingDefinition {
  /** The queue that receives. */
  queue: string;
  /** The exchange messages are published to. */
  exchange: string;
  /** Default ''. */
  routingKey?: string;
  /** Headers exchanges: `{ 'x-match': 'all', ... }`. */
  arguments?: FieldTable;
}

/** Exchange-to-exchange binding: messages flow from `source` to `destination`. */
export interface ExchangeBindingDefinition {
  /** The exchange messages are published to. */
  source: string;
  /** The exchange that receives them. */
  destination: string;
  /** Default ''. */
  routingKey?: string;
  /** Binding arguments (headers exchanges). */
  arguments?: FieldTable;
}

/** Shared topology, declared once at start-up (module options, server options, `@AmqpController`). */
export interface TopologyDefinition {
  /** Exchanges, declared first. */
  exchanges?: ExchangeDefinition[];
  /** Queues, declared after the exchanges. */
  queues?: QueueDefinition[];
  /** Queue bindings, declared last. */
  bindings?: QueueBindingDefinition[];
  /** Exchange-to-exchange bindings, declared before the queue bindings. */
  exchangeBindings?: ExchangeBindingDefinition[];
}
