import { ProtocolError, ReplyCode } from '../errors';
import { decodeContentHeaderAt, type DecodedProperties } from './properties';

/** A content-bearing method (deliver, get-ok, return) with its header and whole body. */
export interface AssembledContent<M> {
  method: M;
  properties: DecodedProperties;
  body: Buffer;
  /**
   * 0, or the announced size of a body over the limit: it was skipped unread and `body` is empty.
   * The caller decides what to do with such a message (reject it, report it).
   */
  skippedSize: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Bodies up to this size get their buffer at once, at the announced size. Above it the buffer grows
 * (doubling, capped at the announced size) as bytes arrive, so a peer cannot make us allocate more
 * than about twice what it actually sent: a header announcing 100 MiB followed by 10 bytes costs 1 MiB.
 */
export const EAGER_BODY_LIMIT = 1024 * 1024;

/**
 * Reassembles method → header → body frames on one channel. A body that arrives in a single frame is
 * passed on as a zero-copy view; others are copied into one buffer (see EAGER_BODY_LIMIT). A body
 * over `maxBodySize` is not kept at all: its frames are counted and dropped, and the content comes
 * out with `skippedSize` set, so one oversized message does not cost the connection. Any other frame
 * order is a 505 UNEXPECTED_FRAME.
 */
export class ContentAssembler<M> {
  private method: M | null = null;
  private properties: DecodedProperties | null = null;
  private body: Buffer | null = null;
  private bodySize = 0;
  private received = 0;
  /** The body is over the limit: count its bytes, keep none. */
  private skipping = false;

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
    // The limit is ours to apply (skip, not fail): the decoder gets no bound.
    const h = decodeContentHeaderAt(buf, start, end, Infinity);
    this.properties = h.properties;
    this.bodySize = h.bodySize;
    this.received = 0;
    this.skipping = h.bodySize > this.maxBodySize;
    if (h.bodySize === 0) return this.finish(EMPTY, 0);
    return null;
  }

  /** Feed a body frame; returns the finished content on the last one. */
  bodyFrame(payload: Buffer): AssembledContent<M> | null {
    if (this.properties === null) throw unexpected('unexpected content body frame');
    const n = payload.length;
    const received = this.received + n;
    if (received > this.bodySize) {
      throw new ProtocolError(
        `content body frames exceed the announced body size ${this.bodySize}`,
        ReplyCode.FRAME_ERROR,
      );
    }
    if (this.skipping) {
      this.received = received;
      return received === this.bodySize ? this.finish(EMPTY, this.bodySize) : null;
    }
    if (this.received === 0 && n === this.bodySize) return this.finish(payload, 0);
    let body = this.body;
    if (body === null || received > body.length) body = this.grow(received);
    payload.copy(body, this.received);
    this.received = received;
    if (received === this.bodySize) return this.finish(body, 0);
    return null;
  }

  /** Forget a half-received message (channel closed). */
  reset(): void {
    this.method = null;
    this.properties = null;
    this.body = null;
    this.skipping = false;
  }

  /** A body buffer holding at least `needed` bytes: the whole body when small, else doubling. */
  private grow(needed: number): Buffer {
    const size = this.bodySize;
    const old = this.body;
    let capacity = size;
    if (size > EAGER_BODY_LIMIT) {
      capacity = Math.max(old === null ? EAGER_BODY_LIMIT : old.length * 2, needed);
      if (capacity > size) capacity = size;
    }
    const body = Buffer.allocUnsafe(capacity);
    if (old !== null) old.copy(body, 0, 0, this.received);
    this.body = body;
    return body;
  }

  private finish(body: Buffer, skippedSize: number): AssembledContent<M> {
    const out = { method: this.method as M, properties: this.properties as DecodedProperties, body, skippedSize };
    this.reset();
    return out;
  }
}

function unexpected(message: string): ProtocolError {
  return new ProtocolError(message, ReplyCode.UNEXPECTED_FRAME);
}
