import type { MessageProperties } from '../../amqp';
import type { AmqpDeserializer, AmqpSerializer, SerializedBody } from './amqp-serializer.interface';

/** The content type of JSON bodies. */
export const CONTENT_TYPE_JSON = 'application/json';
/** The content type of string bodies (UTF-8). */
export const CONTENT_TYPE_TEXT = 'text/plain';
/** The content type of Buffer bodies. */
export const CONTENT_TYPE_BINARY = 'application/octet-stream';

/** A body the deserializer could not read. Such a message is rejected, never requeued. */
export class DeserializationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeserializationError';
  }
}

/**
 * Default serializer: a Buffer goes as is (application/octet-stream), a string as UTF-8 text (text/plain), anything
 * else as JSON (application/json). `undefined` becomes an empty body.
 */
export class DefaultSerializer implements AmqpSerializer {
  /** Encode `value` by its type (see the class). A value `JSON.stringify` cannot encode (a BigInt, a cycle) throws. */
  serialize(value: unknown): SerializedBody {
    if (value === undefined) return { body: Buffer.alloc(0) };
    if (Buffer.isBuffer(value)) return { body: value, contentType: CONTENT_TYPE_BINARY };
    if (value instanceof Uint8Array) {
      return { body: Buffer.from(value.buffer, value.byteOffset, value.byteLength), contentType: CONTENT_TYPE_BINARY };
    }
    if (typeof value === 'string') return { body: Buffer.from(value, 'utf8'), contentType: CONTENT_TYPE_TEXT };
    return { body: Buffer.from(JSON.stringify(value), 'utf8'), contentType: CONTENT_TYPE_JSON };
  }
}

/**
 * Default deserializer, driven by content-type: JSON (`application/json`, `*+json`) is parsed, `text/*` becomes a
 * string, `application/octet-stream` and unknown types stay a Buffer. Without a content type the body is parsed as
 * JSON when it is JSON, and kept as a Buffer otherwise. An empty body is `undefined`. A body labelled JSON that does
 * not parse throws DeserializationError.
 */
export class DefaultDeserializer implements AmqpDeserializer {
  /** Decode `body` by its content type (see the class); throws {@link DeserializationError} for bad JSON. */
  deserialize(body: Buffer, properties: MessageProperties): unknown {
    if (body.length === 0) return undefined;
    const contentType = properties.contentType;
    // The common case first, without parsing the media type.
    if (contentType === CONTENT_TYPE_JSON) return parseJson(body);
    const type = contentType === undefined ? '' : contentType.split(';')[0].trim().toLowerCase();
    if (type === CONTENT_TYPE_JSON || type.endsWith('+json')) return parseJson(body);
    if (type.startsWith('text/')) return body.toString('utf8');
    if (type !== '') return body;
    try {
      return JSON.parse(body.toString());
    } catch {
      return body;
    }
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString());
  } catch (err) {
    throw new DeserializationError(`body is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}
