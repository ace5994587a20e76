import { EncodeError, ProtocolError, ReplyCode } from '../errors';
import type { FieldTable } from './field-table';
import { Reader } from './reader';
import { BASIC_PROPERTIES, BasicPropertyFlag, ClassId } from './spec.generated';
import type { Writer } from './writer';

/**
 * The 14 basic content properties. All are optional and none has a default: a property left undefined (or null) is
 * not sent. The string properties are AMQP short strings, at most 255 bytes of UTF-8 each; a longer one, or a value
 * of the wrong type, fails the publish with an `EncodeError` naming the field (`properties.messageId`).
 */
export interface MessageProperties {
  /** The MIME type of the body, such as `application/json` or `text/plain`. */
  contentType?: string;
  /** The encoding applied to the body, such as `gzip`. */
  contentEncoding?: string;
  /**
   * Application headers, a field table: what a headers exchange routes on, and RabbitMQ's `x-` headers (`CC`, `BCC`,
   * `x-death`). Decoded on first read in a received message.
   */
  headers?: FieldTable;
  /** 1 = transient, 2 = persistent. */
  deliveryMode?: number;
  /**
   * The message priority, an integer 0 to 255 (another value is an `EncodeError`). RabbitMQ honours it only on a
   * queue declared with a maximum priority, where a higher value counts as that maximum.
   */
  priority?: number;
  /** Ties a reply to its request: an RPC reply carries its request's `correlationId`. */
  correlationId?: string;
  /** The queue a reply should be sent to (`amq.rabbitmq.reply-to` for RabbitMQ's direct reply-to). */
  replyTo?: string;
  /**
   * The message's time to live in milliseconds, as a decimal string (`'60000'`): the broker drops it, or dead-letters
   * it, once it has waited that long in a queue. A string that is not a non-negative integer makes RabbitMQ close
   * the channel with 406 PRECONDITION_FAILED.
   */
  expiration?: string;
  /** The application's identifier of the message. */
  messageId?: string;
  /** When the message was made. Sent as whole seconds since the epoch: milliseconds are dropped. */
  timestamp?: Date;
  /** The message type's name, for the application. */
  type?: string;
  /**
   * The user who published it. RabbitMQ checks it: a `userId` other than the connection's user makes it close the
   * channel with 406 PRECONDITION_FAILED (unless that user has the `impersonator` tag).
   */
  userId?: string;
  /** The publishing application's identifier. */
  appId?: string;
  /** The spec's reserved 14th property (cluster-id in AMQP 0-8); RabbitMQ gives it no meaning. */
  clusterId?: string;
}

// The spec's property flags, as module constants: the header codec below tests them for every message.
const F_CONTENT_TYPE = BasicPropertyFlag.CONTENT_TYPE;
const F_CONTENT_ENCODING = BasicPropertyFlag.CONTENT_ENCODING;
const F_HEADERS = BasicPropertyFlag.HEADERS;
const F_DELIVERY_MODE = BasicPropertyFlag.DELIVERY_MODE;
const F_PRIORITY = BasicPropertyFlag.PRIORITY;
const F_CORRELATION_ID = BasicPropertyFlag.CORRELATION_ID;
const F_REPLY_TO = BasicPropertyFlag.REPLY_TO;
const F_EXPIRATION = BasicPropertyFlag.EXPIRATION;
const F_MESSAGE_ID = BasicPropertyFlag.MESSAGE_ID;
const F_TIMESTAMP = BasicPropertyFlag.TIMESTAMP;
const F_TYPE = BasicPropertyFlag.TYPE;
const F_USER_ID = BasicPropertyFlag.USER_ID;
const F_APP_ID = BasicPropertyFlag.APP_ID;
const F_CLUSTER_ID = BasicPropertyFlag.CLUSTER_ID;

const BASIC_CLASS = ClassId.BASIC;

/**
 * Properties decoded from a content header. Short strings and octets are decoded eagerly; `headers`
 * keeps its raw bytes and is decoded the first time it is read, and `timestamp` becomes a Date only
 * when read, so a consumer that never looks at them never pays for them.
 */
export class DecodedProperties implements MessageProperties {
  contentType: string | undefined = undefined;
  contentEncoding: string | undefined = undefined;
  deliveryMode: number | undefined = undefined;
  priority: number | undefined = undefined;
  correlationId: string | undefined = undefined;
  replyTo: string | undefined = undefined;
  expiration: string | undefined = undefined;
  messageId: string | undefined = undefined;
  type: string | undefined = undefined;
  userId: string | undefined = undefined;
  appId: string | undefined = undefined;
  clusterId: string | undefined = undefined;
  /** @internal the buffer holding the raw header-table bytes [rawStart, rawEnd), until first read */
  private rawHeaders: Buffer | undefined = undefined;
  private rawStart = 0;
  private rawEnd = 0;
  private decodedHeaders: FieldTable | undefined = undefined;
  /** Seconds since the epoch as read, until `timestamp` is first read. */
  private rawTimestamp: number | undefined = undefined;
  private decodedTimestamp: Date | undefined = undefined;

  get timestamp(): Date | undefined {
    if (this.rawTimestamp !== undefined) {
      this.decodedTimestamp = new Date(this.rawTimestamp * 1000);
      this.rawTimestamp = undefined;
    }
    return this.decodedTimestamp;
  }
  set timestamp(value: Date | undefined) {
    this.rawTimestamp = undefined;
    this.decodedTimestamp = value;
  }

  /** @internal */
  setRawTimestamp(seconds: number): void {
    this.rawTimestamp = seconds;
    this.decodedTimestamp = undefined;
  }

  get headers(): FieldTable | undefined {
    if (this.rawHeaders !== undefined) {
      const start = this.rawStart;
      const end = this.rawEnd;
      // Clear the raw bytes only once decoded: malformed headers throw on every read, never vanish.
      this.decodedHeaders = tableReader.reset(this.rawHeaders, start, end).tableBody(start, end);
      this.rawHeaders = undefined;
    }
    return this.decodedHeaders;
  }
  set headers(value: FieldTable | undefined) {
    this.rawHeaders = undefined;
    this.decodedHeaders = value;
  }

  /** Whether headers were decoded yet (for tests of the lazy path). */
  get headersDecoded(): boolean {
    return this.rawHeaders === undefined;
  }

  /**
   * The properties that are set, as a plain object (`headers` and `timestamp` decoded): what `JSON.stringify` and
   * logging see, instead of the lazy fields' raw bytes.
   *
   * @throws {@link ProtocolError} when the raw header table is malformed.
   */
  toJSON(): MessageProperties {
    const out: MessageProperties = {};
    for (const key of PROPERTY_KEYS) {
      const v = this[key];
      if (v !== undefined) (out as Record<string, unknown>)[key] = v;
    }
    return out;
  }

  /** @internal */
  setRawHeaders(raw: Buffer): void {
    this.setRawHeadersIn(raw, 0, raw.length);
  }

  /** @internal the table is bytes [start, end) of buf (no view is made until it is decoded) */
  setRawHeadersIn(buf: Buffer, start: number, end: number): void {
    this.rawHeaders = buf;
    this.rawStart = start;
    this.rawEnd = end;
    this.decodedHeaders = undefined;
  }
}

/** Decodes lazily-read header tables (synchronous, never re-entered). */
const tableReader = new Reader(Buffer.alloc(0));

/** The 14 property names in the spec's order (the order of their flags and of their fields on the wire). */
export const PROPERTY_KEYS: ReadonlyArray<keyof MessageProperties> = BASIC_PROPERTIES.map(
  (p) => p.name as keyof MessageProperties,
);

/** A decoded content-header frame. */
export interface ContentHeader {
  /** The class of the content (60, basic, for every message RabbitMQ sends). */
  classId: number;
  /** The body size announced, bytes (up to 2^53 - 1). */
  bodySize: number;
  properties: DecodedProperties;
}

/** Reused by decodeContentHeader (synchronous, never re-entered): one Reader less per message. */
const headerReader = new Reader(Buffer.alloc(0));

/** Decode a content-header frame payload. The header table stays raw until read. */
export function decodeContentHeader(payload: Buffer, maxBodySize: number): ContentHeader {
  return decodeContentHeaderAt(payload, 0, payload.length, maxBodySize);
}

/** decodeContentHeader for the payload `buf[start, end)`, decoded in place (no view of it is made). */
export function decodeContentHeaderAt(buf: Buffer, start: number, end: number, maxBodySize: number): ContentHeader {
  const r = headerReader.reset(buf, start, end);
  const classId = r.u16();
  r.u16(); // weight, unused
  const hi = r.u32();
  const lo = r.u32();
  const bodySize = hi * 0x100000000 + lo;
  if (bodySize > maxBodySize) {
    throw new ProtocolError(
      `content body of ${bodySize} bytes exceeds the limit of ${maxBodySize} (maxMessageSize)`,
      ReplyCode.FRAME_ERROR,
    );
  }
  const flags = r.u16();
  if (flags & 1) throw new ProtocolError('property flags continuation is not supported', ReplyCode.SYNTAX_ERROR);
  const p = new DecodedProperties();
  if (flags & F_CONTENT_TYPE) p.contentType = r.shortstr();
  if (flags & F_CONTENT_ENCODING) p.contentEncoding = r.shortstr();
  if (flags & F_HEADERS) {
    const len = r.u32();
    if (len > r.remaining) throw new ProtocolError('truncated frame: header table', ReplyCode.SYNTAX_ERROR);
    p.setRawHeadersIn(buf, r.pos, r.pos + len);
    r.pos += len;
  }
  if (flags & F_DELIVERY_MODE) p.deliveryMode = r.u8();
  if (flags & F_PRIORITY) p.priority = r.u8();
  if (flags & F_CORRELATION_ID) p.correlationId = r.shortstrUncached();
  if (flags & F_REPLY_TO) p.replyTo = r.shortstr();
  if (flags & F_EXPIRATION) p.expiration = r.shortstr();
  if (flags & F_MESSAGE_ID) p.messageId = r.shortstrUncached();
  if (flags & F_TIMESTAMP) p.setRawTimestamp(r.timestampSeconds());
  if (flags & F_TYPE) p.type = r.shortstr();
  if (flags & F_USER_ID) p.userId = r.shortstr();
  if (flags & F_APP_ID) p.appId = r.shortstr();
  if (flags & F_CLUSTER_ID) p.clusterId = r.shortstr();
  return { classId, bodySize, properties: p };
}

function octet(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new EncodeError(field, `expected an integer 0..255, got ${v}`);
  return v;
}

/**
 * Encode a content-header payload (class, weight, body size, flags, properties) at the writer's
 * position. Only the properties that are set (not undefined/null) are written.
 */
export function encodeContentHeader(w: Writer, bodySize: number, p: MessageProperties | undefined): void {
  w.ensure(14);
  const b = w.buf;
  const pos = w.pos;
  b.writeUInt16BE(BASIC_CLASS, pos);
  b.writeUInt16BE(0, pos + 2);
  const hi = Math.floor(bodySize / 0x100000000);
  b.writeUInt32BE(hi, pos + 4);
  b.writeUInt32BE(bodySize - hi * 0x100000000, pos + 8);
  const flagsAt = pos + 12;
  w.pos = pos + 14;
  if (p === undefined) {
    b.writeUInt16BE(0, flagsAt);
    return;
  }
  let flags = 0;
  if (p.contentType != null) {
    flags |= F_CONTENT_TYPE;
    w.shortstr(p.contentType, 'properties.contentType');
  }
  if (p.contentEncoding != null) {
    flags |= F_CONTENT_ENCODING;
    w.shortstr(p.contentEncoding, 'properties.contentEncoding');
  }
  if (p.headers != null) {
    flags |= F_HEADERS;
    w.table(p.headers, 'properties.headers');
  }
  // `persistent: true` (a publish option riding along with the properties) means delivery mode 2.
  const deliveryMode = p.deliveryMode ?? ((p as { persistent?: boolean }).persistent ? 2 : undefined);
  if (deliveryMode != null) {
    flags |= F_DELIVERY_MODE;
    w.u8(octet(deliveryMode, 'properties.deliveryMode'));
  }
  if (p.priority != null) {
    flags |= F_PRIORITY;
    w.u8(octet(p.priority, 'properties.priority'));
  }
  if (p.correlationId != null) {
    flags |= F_CORRELATION_ID;
    w.shortstr(p.correlationId, 'properties.correlationId');
  }
  if (p.replyTo != null) {
    flags |= F_REPLY_TO;
    w.shortstr(p.replyTo, 'properties.replyTo');
  }
  if (p.expiration != null) {
    flags |= F_EXPIRATION;
    w.shortstr(p.expiration, 'properties.expiration');
  }
  if (p.messageId != null) {
    flags |= F_MESSAGE_ID;
    w.shortstr(p.messageId, 'properties.messageId');
  }
  if (p.timestamp != null) {
    flags |= F_TIMESTAMP;
    w.timestamp(p.timestamp);
  }
  if (p.type != null) {
    flags |= F_TYPE;
    w.shortstr(p.type, 'properties.type');
  }
  if (p.userId != null) {
    flags |= F_USER_ID;
    w.shortstr(p.userId, 'properties.userId');
  }
  if (p.appId != null) {
    flags |= F_APP_ID;
    w.shortstr(p.appId, 'properties.appId');
  }
  if (p.clusterId != null) {
    flags |= F_CLUSTER_ID;
    w.shortstr(p.clusterId, 'properties.clusterId');
  }
  // The writer may have grown (reallocated) while writing properties.
  w.buf.writeUInt16BE(flags, flagsAt);
}
