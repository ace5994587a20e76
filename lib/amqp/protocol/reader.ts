import { ReplyCode, ProtocolError } from '../errors';
import { AmqpDecimal, type FieldTable, type FieldValue } from './field-table';

/** Nesting deeper than this is refused: a hostile peer must not be able to exhaust the stack. */
const MAX_DEPTH = 64;

function truncated(what: string): ProtocolError {
  return new ProtocolError(`truncated frame: not enough bytes for ${what}`, ReplyCode.SYNTAX_ERROR);
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
    this.end = end;
  }

  reset(buf: Buffer, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
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
  u16(): number {
    return this.buf.readUInt16BE(this.need(2, 'short'));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.need(4, 'long'));
  }
  /** Unsigned 64-bit method field (delivery tags): a number; beyond 2^53 is refused as a syntax error. */
  u64(): number {
    const p = this.need(8, 'longlong');
    const hi = this.buf.readUInt32BE(p);
    if (hi > 0x1fffff) throw new ProtocolError('longlong field beyond 2^53', ReplyCode.SYNTAX_ERROR);
    return hi * 0x100000000 + this.buf.readUInt32BE(p + 4);
  }
  shortstr(): string {
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
    return new Date(Number(this.i64()) * 1000);
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
