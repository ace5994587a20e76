import type { MessageProperties } from '../../amqp';

/** What a serializer produces: the message body and the properties that describe it. */
export interface SerializedBody {
  /** The message body. */
  body: Buffer;
  /** The `content-type` property to send (e.g. `application/json`). */
  contentType?: string;
  /** The `content-encoding` property to send (e.g. `gzip`). */
  contentEncoding?: string;
}

/** Turns a payload (event, request, reply) into a message body. */
export interface AmqpSerializer {
  /** Encode `value`; a throw fails the publish (or, for a reply, becomes an error reply). */
  serialize(value: unknown): SerializedBody;
}

/** Turns a message body back into a payload. Throws when the body cannot be read. */
export interface AmqpDeserializer {
  /**
   * Decode a body, with the message's properties (`contentType`, `contentEncoding`...). A throw rejects the message
   * without requeue (a request gets a `DESERIALIZATION_FAILED` error reply).
   */
  deserialize(body: Buffer, properties: MessageProperties): unknown;
}
