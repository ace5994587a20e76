import type { MessageProperties } from '../../amqp';

/** What a serializer produces: the message body and the properties that describe it. */
export interface SerializedBody {
  body: Buffer;
  contentType?: string;
  contentEncoding?: string;
}

/** Turns a payload (event, request, reply) into a message body. */
export interface AmqpSerializer {
  serialize(value: unknown): SerializedBody;
}

/** Turns a message body back into a payload. Throws when the body cannot be read. */
export interface AmqpDeserializer {
  deserialize(body: Buffer, properties: MessageProperties): unknown;
}
