import { EncodeError } from '../errors';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEADER_SIZE,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_OVERHEAD,
} from './frame-parser';
import { encodeContentHeader, type MessageProperties } from './properties';
import { BASIC_PUBLISH, ClassId, METHODS_BY_ID, type MethodArgs, MethodId, type MethodName } from './spec.generated';
import { METHOD_IDS } from './methods';
import { Writer } from './writer';

/** The 8-byte heartbeat frame, shared. */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);

/**
 * The methods `settle()` writes, by their method id in class basic: basic.ack, basic.reject or basic.nack.
 * All three carry a 64-bit delivery tag and one octet of bits.
 */
export type SettleMethodId = typeof MethodId.BASIC_ACK | typeof MethodId.BASIC_REJECT | typeof MethodId.BASIC_NACK;

/**
 * The hand-written encoders below write what the generated encoders of basic.publish and basic.ack/reject/nack
 * would (test/unit/codec-fast-paths.spec.ts compares them byte for byte); their ids come from the spec, as bytes.
 */
const PUBLISH_ID_0 = BASIC_PUBLISH >>> 24;
const PUBLISH_ID_1 = (BASIC_PUBLISH >>> 16) & 0xff;
const PUBLISH_ID_2 = (BASIC_PUBLISH >>> 8) & 0xff;
const PUBLISH_ID_3 = BASIC_PUBLISH & 0xff;
const BASIC_CLASS_0 = ClassId.BASIC >>> 8;
const BASIC_CLASS_1 = ClassId.BASIC & 0xff;
/** A settle frame: header, class and method ids (4), delivery tag (8), bits (1), frame-end. */
const SETTLE_PAYLOAD = 4 + 8 + 1;
const SETTLE_FRAME = SETTLE_PAYLOAD + FRAME_OVERHEAD;

/** Above this body size a publish is written as [frames head, body slices...] instead of one copy. */
export const COPY_BODY_LIMIT = 64 * 1024;

/**
 * publish() encodes in place into a slab of this size and returns views of it — what
 * Buffer.allocUnsafe does with its 8 KiB pool, minus the copy of the method and header frames out of
 * a scratch buffer. A slab is never written again below its current position, so a returned view
 * stays valid; it lives until every view of it is gone.
 */
const SLAB_SIZE = 64 * 1024;
/** A publish starts in the current slab only if this much (plus its inline body frames) is free. */
const HEAD_ROOM = 2048;

/**
 * Encodes outgoing frames. One encoder per connection. method() reuses a scratch Writer and copies
 * each frame out once into an exactly-sized, non-zeroed buffer; publish() writes straight into a
 * slab (see SLAB_SIZE).
 */
export class FrameEncoder {
  private readonly w = new Writer(16 * 1024);
  /** A Writer over the current publish slab; its pos only moves forward until the slab is replaced. */
  private readonly slab = new Writer(SLAB_SIZE);

  constructor(
    /** Negotiated frame_max (0 = no limit). */
    public frameMax: number,
  ) {}

  /** One method frame. */
  method<N extends MethodName>(channel: number, name: N, args: MethodArgs[N]): Buffer {
    const spec = METHODS_BY_ID.get(METHOD_IDS[name]);
    if (!spec) throw new EncodeError('method', `unknown method ${name}`);
    const w = this.w.reset();
    const start = frameStart(w, channel, FRAME_METHOD);
    (spec.encode as (w: Writer, a: MethodArgs[N]) => void)(w, args);
    this.frameEnd(w, start);
    return w.copyOut();
  }

  /**
   * basic.publish + content header + body frames. Bodies up to COPY_BODY_LIMIT are copied into the
   * same buffer (one write); larger bodies are returned as slices so nothing big is copied — the
   * caller writes the parts corked (one writev).
   */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    immediate: boolean,
    properties: MessageProperties | undefined,
    body: Buffer,
  ): Buffer | Buffer[] {
    const bodyLen = body.length;
    const maxChunk = this.frameMax === 0 ? bodyLen : this.frameMax - FRAME_OVERHEAD;
    const inline = bodyLen <= COPY_BODY_LIMIT;
    const bodyBytes = inline && bodyLen > 0 ? bodyLen + Math.ceil(bodyLen / maxChunk) * FRAME_OVERHEAD : 0;
    const w = this.slab;
    if (w.buf.length - w.pos < HEAD_ROOM + bodyBytes) {
      w.buf = Buffer.allocUnsafe(Math.max(SLAB_SIZE, HEAD_ROOM + bodyBytes));
      w.pos = 0;
    }
    const start = w.pos;
    try {
      // basic.publish, written directly (no args object): its class and method ids, the reserved ticket (0), then
      // the fields as encodeBasicPublish writes them. The frame size is patched by frameEnd.
      let b = w.buf;
      const at = start + FRAME_HEADER_SIZE;
      b[start] = FRAME_METHOD;
      b.writeUInt16BE(channel, start + 1);
      b[at] = PUBLISH_ID_0;
      b[at + 1] = PUBLISH_ID_1;
      b[at + 2] = PUBLISH_ID_2;
      b[at + 3] = PUBLISH_ID_3;
      b[at + 4] = 0;
      b[at + 5] = 0;
      w.pos = at + 6;
      w.shortstr(exchange, 'basic.publish.exchange');
      w.shortstr(routingKey, 'basic.publish.routingKey');
      w.u8((mandatory ? 1 : 0) | (immediate ? 2 : 0));
      this.frameEnd(w, start);

      const header = frameStart(w, channel, FRAME_HEADER);
      encodeContentHeader(w, bodyLen, properties);
      this.frameEnd(w, header);

      if (inline) {
        w.ensure(bodyBytes); // only a huge header table can have used up HEAD_ROOM
        b = w.buf;
        let pos = w.pos;
        for (let off = 0; off < bodyLen; off += maxChunk) {
          const n = Math.min(maxChunk, bodyLen - off);
          b[pos] = FRAME_BODY;
          b.writeUInt16BE(channel, pos + 1);
          b.writeUInt32BE(n, pos + 3);
          body.copy(b, pos + FRAME_HEADER_SIZE, off, off + n);
          b[pos + FRAME_HEADER_SIZE + n] = FRAME_END;
          pos += n + FRAME_OVERHEAD;
        }
        w.pos = pos;
        return b.subarray(start, pos);
      }
    } catch (err) {
      // Forget the partial frames (and, via reset(), whatever the failed encode left on the writer's
      // cycle-detection path); the slab stays in use from `start`.
      w.reset();
      w.pos = start;
      throw err;
    }
    const parts: Buffer[] = [w.buf.subarray(start, w.pos)];
    for (let off = 0; off < bodyLen; off += maxChunk) {
      const n = Math.min(maxChunk, bodyLen - off);
      const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      head[0] = FRAME_BODY;
      head.writeUInt16BE(channel, 1);
      head.writeUInt32BE(n, 3);
      parts.push(head, body.subarray(off, off + n), END_OCTET);
    }
    return parts;
  }

  /**
   * basic.ack, basic.reject or basic.nack (`methodId`) with its delivery tag and bits (multiple, requeue) — one per
   * consumed message on the hot path, so written straight into the slab: 21 bytes, no args object, no method-table
   * lookup. The same bytes as `method()` with the generated encoder.
   */
  settle(channel: number, methodId: SettleMethodId, deliveryTag: number, bits: number): Buffer {
    const w = this.slab;
    if (w.buf.length - w.pos < SETTLE_FRAME) {
      w.buf = Buffer.allocUnsafe(SLAB_SIZE);
      w.pos = 0;
    }
    const b = w.buf;
    const p = w.pos;
    b[p] = FRAME_METHOD;
    b[p + 1] = channel >>> 8;
    b[p + 2] = channel & 0xff;
    b[p + 3] = 0;
    b[p + 4] = 0;
    b[p + 5] = 0;
    b[p + 6] = SETTLE_PAYLOAD;
    const ids = p + FRAME_HEADER_SIZE;
    b[ids] = BASIC_CLASS_0;
    b[ids + 1] = BASIC_CLASS_1;
    b[ids + 2] = methodId >>> 8;
    b[ids + 3] = methodId & 0xff;
    const hi = Math.floor(deliveryTag / 0x100000000);
    b.writeUInt32BE(hi, ids + 4);
    b.writeUInt32BE(deliveryTag - hi * 0x100000000, ids + 8);
    b[ids + 12] = bits;
    b[ids + 13] = FRAME_END;
    w.pos = p + SETTLE_FRAME;
    return b.subarray(p, p + SETTLE_FRAME);
  }

  /** Patch the size of the frame that began at `start` and write its frame-end octet; refuses one over frame_max. */
  private frameEnd(w: Writer, start: number): void {
    const size = w.pos - start - FRAME_HEADER_SIZE;
    if (this.frameMax !== 0 && size + FRAME_OVERHEAD > this.frameMax) {
      throw new EncodeError('frame', `a ${size + FRAME_OVERHEAD}-byte frame exceeds frame_max ${this.frameMax}`);
    }
    w.buf.writeUInt32BE(size, start + 3);
    w.u8(FRAME_END);
  }
}

/** Reserve a frame header (type, channel; the size is patched by frameEnd) at w.pos. */
function frameStart(w: Writer, channel: number, type: number): number {
  w.ensure(FRAME_HEADER_SIZE);
  const at = w.pos;
  w.buf[at] = type;
  w.buf.writeUInt16BE(channel, at + 1);
  w.pos = at + FRAME_HEADER_SIZE;
  return at;
}

const END_OCTET = Buffer.from([FRAME_END]);
