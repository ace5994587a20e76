/**
 * The part of AsyncAPI 3.0 (https://www.asyncapi.com/docs/reference/specification/v3.0.0) that Warren writes, with
 * the AMQP 0.3.0 bindings. Every object is plain JSON.
 */

export interface AsyncApiInfo {
  title: string;
  /** The version of the application's API (not of AsyncAPI). */
  version: string;
  description?: string;
}

export interface AsyncApiReference {
  $ref: string;
}

export interface AsyncApiServer {
  /** `host:port`. */
  host: string;
  protocol: 'amqp' | 'amqps';
  protocolVersion: '0.9.1';
  /** The virtual host, as the path of an AMQP URL (`/%2F` for `/`). */
  pathname: string;
  title?: string;
}

/** AMQP exchange or queue, as the AMQP channel binding 0.3.0 describes it; arguments in `x-arguments`. */
export interface AmqpChannelBinding {
  is: 'routingKey' | 'queue';
  exchange?: {
    name: string;
    /** Absent for a plugin's type (`x-delayed-message`...), which is in `x-exchange-type`. */
    type?: 'topic' | 'direct' | 'fanout' | 'default' | 'headers';
    durable?: boolean;
    autoDelete?: boolean;
    vhost: string;
  };
  queue?: {
    /** Absent for a server-named queue. */
    name?: string;
    durable: boolean;
    exclusive: boolean;
    autoDelete: boolean;
    vhost: string;
  };
  'x-exchange-type'?: string;
  'x-internal'?: boolean;
  /** The declare arguments (`x-message-ttl`, `x-dead-letter-exchange`, `x-queue-type`...). */
  'x-arguments'?: Record<string, JsonValue>;
  bindingVersion: '0.3.0';
}

/** Where messages reach a queue (or an exchange) from: a binding of the broker's topology. */
export interface WarrenBinding {
  exchange: string;
  routingKey: string;
  arguments?: Record<string, JsonValue>;
}

export interface AsyncApiChannel {
  /** The exchange or queue name; null when only known at run time (server-named queue, a request's reply_to). */
  address: string | null;
  title?: string;
  description?: string;
  messages: Record<string, AsyncApiReference>;
  bindings?: { amqp: AmqpChannelBinding };
  /** The bindings that route messages into this queue or exchange. */
  'x-warren-bindings'?: WarrenBinding[];
}

export interface AmqpOperationBinding {
  /** 2: persistent, 1: transient. */
  deliveryMode?: 1 | 2;
  mandatory?: boolean;
  /** The fixed routing key, when there is one. */
  cc?: string[];
  expiration?: number;
  timestamp?: boolean;
  /** Whether the consumer acknowledges (ack mode `auto` or `manual`), or not (`none`). */
  ack?: boolean;
  bindingVersion: '0.3.0';
}

export interface AsyncApiOperationReply {
  address: { location: string; description?: string };
  channel: AsyncApiReference;
  messages?: AsyncApiReference[];
}

export interface AsyncApiOperation {
  action: 'send' | 'receive';
  channel: AsyncApiReference;
  title?: string;
  summary?: string;
  description?: string;
  messages?: AsyncApiReference[];
  reply?: AsyncApiOperationReply;
  bindings?: { amqp: AmqpOperationBinding };
  /** A handler's retry policy: attempts in all, the delay before each retry (ms), and where it parks. */
  'x-warren-retry'?: { attempts: number; delays: number[]; parkingLot: string };
}

export interface AsyncApiMessage {
  name: string;
  title?: string;
  summary?: string;
  description?: string;
  contentType?: string;
  headers?: Record<string, unknown>;
  /** The payload's JSON Schema, when its handler declares one. */
  payload?: Record<string, unknown>;
  correlationId?: { location: string; description?: string };
}

export interface AsyncApiDocument {
  asyncapi: '3.0.0';
  info: AsyncApiInfo;
  defaultContentType: string;
  servers: Record<string, AsyncApiServer>;
  channels: Record<string, AsyncApiChannel>;
  operations: Record<string, AsyncApiOperation>;
  components: { messages: Record<string, AsyncApiMessage> };
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
