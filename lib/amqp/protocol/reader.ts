import { ReplyCode, ProtocolError } from '../errors';
import { AmqpDecimal, type FieldTable, type FieldValue } from './field-table';

/** Nesting deeper than this is refused: a hostile peer must not be able to exhaust the stack. */
const MAX_DEPTH = 64;

function truncated(what: string): ProtocolError {
  return new ProtocolError(`truncated frame: not enough bytes for ${what}`, ReplyCode.SYNTAX_ERROR);
}

/** Unsigned big-endian 32-bit integer at p (the caller has checked p + 4 <= length). */
function be32(b: Buffer, p: number): number {
  return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}

/*
 * Short strings repeat from message to message: consumer tags, exchange names, routing keys, content
 * types, field-table keys (x-death, x-retry-count...). Decoding one is a native call (~70 ns on Node
 * 20), and a table key then costs a string-table lookup (hash + probe) to internalize it. So short
 * strings go through a small direct-mapped cache keyed by their bytes: a hit (bytes compared in full)
 * returns the very string decoded before (for a key, already internalized by its first use). Same idea
 * as @msgpack/msgpack's CachedKeyDecoder. A miss costs a failed comparison and a ≤ 32-byte copy.
 * Strings are immutable, so a cached one is indistinguishable from a fresh decode. Fields that are
 * unique per message (message and correlation ids) skip it: see shortstrUncached().
 */
const STRING_CACHE_MAX = 32;
const STRING_CACHE_SLOTS = 256;
const cacheBytes = new Uint8Array(STRING_CACHE_SLOTS * STRING_CACHE_MAX);
const cacheLens = new Uint8Array(STRING_CACHE_SLOTS);
const cacheStrings: string[] = new Array<string>(STRING_CACHE_SLOTS).fill('');

function cachedString(buf: Buffer, p: number, len: number): string {
  if (len === 0) return '';
  if (len > STRING_CACHE_MAX) return buf.toString('utf8', p, p + len);
  // Slot from the length and three sampled bytes; the full comparison below decides.
  const slot = (len * 17 + buf[p] * 3 + buf[p + (len >> 1)] * 31 + buf[p + len - 1] * 7) & (STRING_CACHE_SLOTS - 1);
  const base = slot * STRING_CACHE_MAX;
  if (cacheLens[slot] === len) {
    let i = 0;
    while (i < len && cacheBytes[base + i] === buf[p + i]) i++;
    if (i === len) return cacheStrings[slot];
  }
  const s = buf.toString('utf8', p, p + len);
  for (let i = 0; i < len; i++) cacheBytes[base + i] = buf[p + i];
  cacheLens[slot] = len;
  cacheStrings[slot] = s;
  return s;
}

/**
 * Bounds-checked reader over one frame payload. Every read checks what is left, so a lying length
 * (a string or table that claims more bytes than the frame holds) is a typed ProtocolError, never an
 * out-of-range read or an allocation sized by the peer.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  private depth = 0;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    // Never past the buffer: the reads below index bytes directly, relying on `end` alone.
    this.end = end > buf.length ? buf.length : end;
  }

  reset(buf: Buffer, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end > buf.length ? buf.length : end;
    this.depth = 0;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): number {
    const p = this.pos;
    if (p + n > this.end) throw truncated(what);
    this.pos = p + n;
    return p;
  }

  u8(): number {
    return this.buf[this.need(1, 'octet')];
  }
  // Integers are assembled from bytes: need() has checked the bounds, and Buffer#readUInt*BE would
  // validate the offset again (a wrapped validator call per read, measurable on the delivery path).
  u16(): number {
    const p = this.need(2, 'short');
    const b = this.buf;
    return (b[p] << 8) | b[p + 1];
  }
  u32(): number {
    const p = this.need(4, 'long');
    return be32(this.buf, p);
  }
  /** Unsigned 64-bit method field (delivery tags): a number; beyond 2^53 is refused as a syntax error. */
  u64(): number {
    const p = this.need(8, 'longlong');
    const hi = be32(this.buf, p);
    if (hi > 0x1fffff) throw new ProtocolError('longlong field beyond 2^53', ReplyCode.SYNTAX_ERROR);
    return hi * 0x100000000 + be32(this.buf, p + 4);
  }
  /** A short string (names, tags, keys: decoded through the short-string cache above). */
  shortstr(): string {
    const len = this.u8();
    const p = this.need(len, 'short string');
    return cachedString(this.buf, p, len);
  }
  /** A short string that is likely unique per message (an id): decoded directly, not cached. */
  shortstrUncached(): string {
    const len = this.u8();
    const p = this.need(len, 'short string');
    return this.buf.toString('utf8', p, p + len);
  }
  longstr(): string {
    const len = this.u32();
    const p = this.need(len, 'long string');
    return this.buf.toString('utf8', p, p + len);
  }
  /** A long string as raw bytes (a zero-copy view). */
  longbytes(): Buffer {
    const len = this.u32();
    const p = this.need(len, 'byte array');
    return this.buf.subarray(p, p + len);
  }
  timestamp(): Date {
    return new Date(this.timestampSeconds() * 1000);
  }
  /** A timestamp's seconds since the epoch (beyond ±2^53 rounded, as a Date would be). */
  timestampSeconds(): number {
    return Number(this.i64());
  }
  private i64(): number | bigint {
    const p = this.need(8, 'int64');
    const hi = this.buf.readInt32BE(p);
    const lo = this.buf.readUInt32BE(p + 4);
    // Within ±2^53 the value is exact as a number; beyond it, a bigint keeps every bit.
    if (hi >= -0x200000 && hi < 0x200000) return hi * 0x100000000 + lo;
    return this.buf.readBigInt64BE(p);
  }

  table(): FieldTable {
    const len = this.u32();
    const start = this.need(len, 'field table');
    return this.tableBody(start, start + len);
  }

  /** Decode a table whose body spans [start, end) of the buffer (used by lazy header decoding). */
  tableBody(start: number, end: number): FieldTable {
    if (++this.depth > MAX_DEPTH) throw new ProtocolError('field table nested too deeply', ReplyCode.SYNTAX_ERROR);
    const savedEnd = this.end;
    this.pos = start;
    this.end = end;
    const out: FieldTable = {};
    while (this.pos < end) {
      const key = this.shortstr();
      // A peer-sent `__proto__` key is data: plain assignment would replace the table's prototype.
      if (key === '__proto__') {
        Object.defineProperty(out, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
      } else out[key] = this.value();
    }
    this.end = savedEnd;
    this.depth--;
    return out;
  }

  private array(): FieldValue[] {
    const len = this.u32();
    const start = this.need(len, 'field array');
    if (++this.depth > MAX_DEPTH) throw new ProtocolError('field array nested too deeply', ReplyCode.SYNTAX_ERROR);
    const savedEnd = this.end;
    const end = start + len;
    this.pos = start;
    this.end = end;
    const out: FieldValue[] = [];
    while (this.pos < end) out.push(this.value());
    this.end = savedEnd;
    this.depth--;
    return out;
  }

  private value(): FieldValue {
    const tag = this.u8();
    const b = this.buf;
    switch (tag) {
      case 0x74: // t
        return this.u8() !== 0;
      case 0x62: // b
        return b.readInt8(this.need(1, 'int8'));
      case 0x42: // B
        return this.u8();
      case 0x73: // s
        return b.readInt16BE(this.need(2, 'int16'));
      case 0x75: // u
        return this.u16();
      case 0x49: // I
        return b.readInt32BE(this.need(4, 'int32'));
      case 0x69: // i
        return this.u32();
      case 0x6c: // l
        return this.i64();
      case 0x66: // f
        return b.readFloatBE(this.need(4, 'float'));
      case 0x64: // d
        return b.readDoubleBE(this.need(8, 'double'));
      case 0x44: {
        // D
        const scale = this.u8();
        const value = b.readInt32BE(this.need(4, 'decimal'));
        return new AmqpDecimal(scale, value);
      }
      case 0x53: // S
        return this.longstr();
      case 0x78: {
        // x: copy, so a kept header value does not pin the whole socket chunk.
        return Buffer.from(this.longbytes());
      }
      case 0x41: // A
        return this.array();
      case 0x54: // T
        return this.timestamp();
      case 0x46: // F
        return this.table();
      case 0x56: // V
        return null;
      default:
        throw new ProtocolError(`unknown field-table type tag 0x${tag.toString(16)}`, ReplyCode.SYNTAX_ERROR);
    }
  }
}
