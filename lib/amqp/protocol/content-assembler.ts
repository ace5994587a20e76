import { ProtocolError, ReplyCode } from '../errors';
import { decodeContentHeaderAt, type DecodedProperties } from './properties';

/** A content-bearing method (deliver, get-ok, return) with its header and whole body. */
export interface AssembledContent<M> {
  method: M;
  properties: DecodedProperties;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * Reassembles method → header → body frames on one channel. The body buffer is allocated once, at
 * the size the header announced (bounded by maxBodySize); a body that arrives in a single frame is
 * passed on as a zero-copy view. Any other frame order is a 505 UNEXPECTED_FRAME.
 */
export class ContentAssembler<M> {
  private method: M | null = null;
  private properties: DecodedProperties | null = null;
  private body: Buffer | null = null;
  private bodySize = 0;
  private received = 0;

  constructor(private readonly maxBodySize: number) {}

  /** True while a content-bearing method awaits its header or body frames. */
  get busy(): boolean {
    return this.method !== null;
  }

  start(method: M): void {
    if (this.method !== null) throw unexpected('a method frame arrived while content was expected');
    this.method = method;
  }

  /** Feed the header frame; returns the finished content when the body is empty. */
  header(payload: Buffer): AssembledContent<M> | null {
    return this.headerAt(payload, 0, payload.length);
  }

  /** header() for the payload `buf[start, end)`, decoded in place. */
  headerAt(buf: Buffer, start: number, end: number): AssembledContent<M> | null {
    if (this.method === null || this.properties !== null) throw unexpected('unexpected content header frame');
    const h = decodeContentHeaderAt(buf, start, end, this.maxBodySize);
    this.properties = h.properties;
    this.bodySize = h.bodySize;
    this.received = 0;
    if (h.bodySize === 0) return this.finish(EMPTY);
    return null;
  }

  /** Feed a body frame; returns the finished content on the last one. */
  bodyFrame(payload: Buffer): AssembledContent<M> | null {
    if (this.properties === null) throw unexpected('unexpected content body frame');
    const n = payload.length;
    if (this.received + n > this.bodySize) {
      throw new ProtocolError(
        `content body frames exceed the announced body size ${this.bodySize}`,
        ReplyCode.FRAME_ERROR,
      );
    }
    if (this.received === 0 && n === this.bodySize) return this.finish(payload);
    if (this.body === null) this.body = Buffer.allocUnsafe(this.bodySize);
    payload.copy(this.body, this.received);
    this.received += n;
    if (this.received === this.bodySize) return this.finish(this.body);
    return null;
  }

  /** Forget a half-received message (channel closed). */
  reset(): void {
    this.method = null;
    this.properties = null;
    this.body = null;
  }

  private finish(body: Buffer): AssembledContent<M> {
    const out = { method: this.method as M, properties: this.properties as DecodedProperties, body };
    this.reset();
    return out;
  }
}

function unexpected(message: string): ProtocolError {
  return new ProtocolError(message, ReplyCode.UNEXPECTED_FRAME);
}
