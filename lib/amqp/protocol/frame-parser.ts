import { ProtocolError, ReplyCode } from '../errors';
import { Constants } from './spec.generated';

// The spec's frame constants as this module's own: they are read for every frame, and a module constant costs
// nothing where a load from the generated module's namespace is a property lookup.
/** Frame type of a method frame (the spec's frame-method). */
export const FRAME_METHOD = Constants.FRAME_METHOD;
/** Frame type of a content-header frame (frame-header). */
export const FRAME_HEADER = Constants.FRAME_HEADER;
/** Frame type of a content-body frame (frame-body). */
export const FRAME_BODY = Constants.FRAME_BODY;
/** Frame type of a heartbeat frame (frame-heartbeat). */
export const FRAME_HEARTBEAT = Constants.FRAME_HEARTBEAT;
/** The octet that ends every frame (frame-end, 0xce). */
export const FRAME_END = Constants.FRAME_END;

/** Bytes before a frame's payload: type (1) + channel (2) + size (4). */
export const FRAME_HEADER_SIZE = 7;
/** What a frame adds to its payload: the header plus the frame-end octet. */
export const FRAME_OVERHEAD = FRAME_HEADER_SIZE + 1;

/**
 * Receives each complete frame: its payload is `buf[start, end)` (the socket chunk, or the buffer a straddling frame
 * was assembled in). Offsets instead of a view: the hot path decodes method and header frames in place, and only a
 * body becomes a view (the message's zero-copy body).
 */
export type FrameSink = (type: number, channel: number, buf: Buffer, start: number, end: number) => void;

/** A sink that takes each payload as a view (tests, tools): adapts it to the parser's offsets. */
export function viewSink(sink: (type: number, channel: number, payload: Buffer) => void): FrameSink {
  return (type, channel, buf, start, end) => sink(type, channel, buf.subarray(start, end));
}

/**
 * Streaming frame parser: fed socket chunks in any split, it hands every complete frame to the sink.
 *
 * A frame wholly inside a chunk is passed as a range of that chunk (zero copy). A frame that straddles
 * chunks is copied into one buffer allocated once, at its exact size, when its 7-byte header is
 * known — and that size is checked against `frameMax` first, so the peer cannot choose an allocation.
 * No Buffer.concat, no promise, no per-frame object.
 */
export class FrameParser {
  /** Bytes of a frame header split across chunks. */
  private readonly headerBytes = Buffer.alloc(FRAME_HEADER_SIZE);
  private headerFill = 0;
  /** The straddling frame being assembled (payload + frame-end octet), its type and channel. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  private partialType = 0;
  private partialChannel = 0;
  private failed: ProtocolError | null = null;

  constructor(
    private readonly sink: FrameSink,
    /** Largest frame accepted, including the 8 bytes of overhead (the negotiated frame_max). */
    public frameMax: number,
  ) {}

  /** Feed one chunk. Throws ProtocolError (and stays failed) on a malformed stream. */
  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    try {
      this.parse(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.failed = err;
      throw err;
    }
  }

  private parse(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    if (this.partial) pos = this.fillPartial(chunk, 0);
    else if (this.headerFill > 0) pos = this.fillHeader(chunk, 0);

    while (pos < len) {
      if (len - pos < FRAME_HEADER_SIZE) {
        chunk.copy(this.headerBytes, 0, pos, len);
        this.headerFill = len - pos;
        return;
      }
      const type = chunk[pos];
      const channel = (chunk[pos + 1] << 8) | chunk[pos + 2];
      // pos + 7 <= len was checked above; bytes, not readUInt32BE (which re-validates the offset).
      const size = chunk[pos + 3] * 0x1000000 + ((chunk[pos + 4] << 16) | (chunk[pos + 5] << 8) | chunk[pos + 6]);
      this.check(type, size);
      const end = pos + FRAME_HEADER_SIZE + size;
      if (end < len) {
        if (chunk[end] !== FRAME_END) throw badEnd(chunk[end]);
        this.sink(type, channel, chunk, pos + FRAME_HEADER_SIZE, end);
        pos = end + 1;
      } else {
        this.startPartial(type, channel, size);
        pos = this.fillPartial(chunk, pos + FRAME_HEADER_SIZE);
      }
    }
  }

  private fillHeader(chunk: Buffer, pos: number): number {
    const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, chunk.length - pos);
    chunk.copy(this.headerBytes, this.headerFill, pos, pos + take);
    this.headerFill += take;
    pos += take;
    if (this.headerFill < FRAME_HEADER_SIZE) return pos;
    this.headerFill = 0;
    const h = this.headerBytes;
    const size = h.readUInt32BE(3);
    this.check(h[0], size);
    this.startPartial(h[0], (h[1] << 8) | h[2], size);
    return this.fillPartial(chunk, pos);
  }

  private startPartial(type: number, channel: number, size: number): void {
    this.partial = Buffer.allocUnsafe(size + 1);
    this.partialFill = 0;
    this.partialType = type;
    this.partialChannel = channel;
  }

  private fillPartial(chunk: Buffer, pos: number): number {
    const partial = this.partial as Buffer;
    const take = Math.min(partial.length - this.partialFill, chunk.length - pos);
    chunk.copy(partial, this.partialFill, pos, pos + take);
    this.partialFill += take;
    pos += take;
    if (this.partialFill < partial.length) return pos;
    this.partial = null;
    const last = partial[partial.length - 1];
    if (last !== FRAME_END) throw badEnd(last);
    this.sink(this.partialType, this.partialChannel, partial, 0, partial.length - 1);
    return pos;
  }

  private check(type: number, size: number): void {
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      throw new ProtocolError(`unknown frame type ${type}`, ReplyCode.FRAME_ERROR);
    }
    if (size + FRAME_OVERHEAD > this.frameMax) {
      throw new ProtocolError(
        `frame of ${size + FRAME_OVERHEAD} bytes exceeds the negotiated frame_max ${this.frameMax}`,
        ReplyCode.FRAME_ERROR,
      );
    }
  }
}

function badEnd(octet: number): ProtocolError {
  return new ProtocolError(
    `bad frame-end octet 0x${octet.toString(16)} (expected 0x${FRAME_END.toString(16)})`,
    ReplyCode.FRAME_ERROR,
  );
}
