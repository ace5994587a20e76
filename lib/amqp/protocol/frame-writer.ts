import { EncodeError } from '../errors';
import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD } from './frame-parser';
import { encodeContentHeader, type MessageProperties } from './properties';
import { encodeBasicPublish, METHODS_BY_ID, type MethodArgs, type MethodName } from './spec.generated';
import { METHOD_IDS } from './methods';
import { Writer } from './writer';

/** The 8-byte heartbeat frame, shared. */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);

/** Above this body size a publish is written as [frames head, body slices...] instead of one copy. */
export const COPY_BODY_LIMIT = 64 * 1024;

/**
 * Encodes outgoing frames. One encoder per connection: its scratch Writer is reused for every frame,
 * and each result is copied out once into an exactly-sized, non-zeroed buffer.
 */
export class FrameEncoder {
  private readonly w = new Writer(16 * 1024);

  constructor(
    /** Negotiated frame_max (0 = no limit). */
    public frameMax: number,
  ) {}

  /** One method frame. */
  method<N extends MethodName>(channel: number, name: N, args: MethodArgs[N]): Buffer {
    const spec = METHODS_BY_ID.get(METHOD_IDS[name]);
    if (!spec) throw new EncodeError('method', `unknown method ${name}`);
    const w = this.w.reset();
    const start = this.frameStart(channel, FRAME_METHOD);
    (spec.encode as (w: Writer, a: MethodArgs[N]) => void)(w, args);
    this.frameEnd(start);
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
    const w = this.w.reset();
    let start = this.frameStart(channel, FRAME_METHOD);
    encodeBasicPublish(w, { exchange, routingKey, mandatory, immediate });
    this.frameEnd(start);
    start = this.frameStart(channel, FRAME_HEADER);
    encodeContentHeader(w, body.length, properties);
    this.frameEnd(start);

    const maxChunk = this.frameMax === 0 ? body.length : this.frameMax - FRAME_OVERHEAD;
    const bodyLen = body.length;
    if (bodyLen <= COPY_BODY_LIMIT) {
      const frames = bodyLen === 0 ? 0 : Math.ceil(bodyLen / maxChunk);
      const headLen = w.pos;
      const out = Buffer.allocUnsafe(headLen + bodyLen + frames * FRAME_OVERHEAD);
      w.buf.copy(out, 0, 0, headLen);
      let pos = headLen;
      for (let off = 0; off < bodyLen; off += maxChunk) {
        const n = Math.min(maxChunk, bodyLen - off);
        out[pos] = FRAME_BODY;
        out.writeUInt16BE(channel, pos + 1);
        out.writeUInt32BE(n, pos + 3);
        body.copy(out, pos + 7, off, off + n);
        out[pos + 7 + n] = FRAME_END;
        pos += n + FRAME_OVERHEAD;
      }
      return out;
    }
    const parts: Buffer[] = [w.copyOut()];
    for (let off = 0; off < bodyLen; off += maxChunk) {
      const n = Math.min(maxChunk, bodyLen - off);
      const head = Buffer.allocUnsafe(7);
      head[0] = FRAME_BODY;
      head.writeUInt16BE(channel, 1);
      head.writeUInt32BE(n, 3);
      parts.push(head, body.subarray(off, off + n), END_OCTET);
    }
    return parts;
  }

  private frameStart(channel: number, type: number): number {
    const w = this.w;
    w.ensure(7);
    const at = w.pos;
    w.buf[at] = type;
    w.buf.writeUInt16BE(channel, at + 1);
    w.pos = at + 7;
    return at;
  }

  private frameEnd(start: number): void {
    const w = this.w;
    const size = w.pos - start - 7;
    if (this.frameMax !== 0 && size + FRAME_OVERHEAD > this.frameMax) {
      throw new EncodeError('frame', `a ${size + FRAME_OVERHEAD}-byte frame exceeds frame_max ${this.frameMax}`);
    }
    w.buf.writeUInt32BE(size, start + 3);
    w.u8(FRAME_END);
  }
}

const END_OCTET = Buffer.from([FRAME_END]);
