import type { DecodedProperties, MessageProperties } from './protocol/properties';

/** Delivery information for a message. */
export interface MessageFields {
  /** The delivery's number on its channel: what `ack`, `nack` and `reject` name. */
  deliveryTag: number;
  /** The broker delivered it before (to this or another consumer) and it was not acked. */
  redelivered: boolean;
  /** The exchange it was published to (`''` for the default exchange). */
  exchange: string;
  /** The routing key it was published with. */
  routingKey: string;
  /** Set for consumed messages. */
  consumerTag?: string;
  /** Set for `get`: messages left in the queue. */
  messageCount?: number;
}

/** A message received from the broker (consumed or fetched with `get`). */
export interface Message {
  /** The message body, bytes as received (decode it according to `properties.contentType`). */
  body: Buffer;
  /** All 14 basic properties; `headers` is decoded on first read. */
  properties: DecodedProperties;
  /** How it was delivered: delivery tag, redelivered flag, exchange, routing key. */
  fields: MessageFields;
}

/** Publish options: the basic properties plus the publish flags. */
export interface PublishOptions extends MessageProperties {
  /** Return the message (UnroutableError in confirm mode) when no queue takes it. */
  mandatory?: boolean;
  /** Return the message when no consumer can take it at once. Unsupported by RabbitMQ (it closes the connection). */
  immediate?: boolean;
  /** Shorthand for deliveryMode 2. */
  persistent?: boolean;
}
