import type { DecodedProperties, MessageProperties } from './protocol/properties';

/** Delivery information for a message. */
export interface MessageFields {
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  /** Set for consumed messages. */
  consumerTag?: string;
  /** Set for `get`: messages left in the queue. */
  messageCount?: number;
}

/** A message received from the broker (consumed or fetched with `get`). */
export interface Message {
  body: Buffer;
  /** All 14 basic properties; `headers` is decoded on first read. */
  properties: DecodedProperties;
  fields: MessageFields;
}

/** Publish options: the basic properties plus the publish flags. */
export interface PublishOptions extends MessageProperties {
  /** Return the message (UnroutableError in confirm mode) when no queue takes it. */
  mandatory?: boolean;
  immediate?: boolean;
  /** Shorthand for deliveryMode 2. */
  persistent?: boolean;
}
