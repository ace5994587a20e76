import { EncodeError } from '../errors';
import { AmqpDecimal, type FieldTable, type FieldValue } from './field-table';

const INT8_MIN = -0x80;
const INT8_MAX = 0x7f;
const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A growable write buffer. One instance is reused for every encode on a connection's write path
 * (`writer.ts` is synchronous, so nothing can interleave); callers copy out what they need with
 * `copyOut()` / `copyInto()`. Growth doubles, so a large header table costs O(log n) reallocations once.
 */
export class Writer {
  buf: Buffer;
  pos = 0;
  /** Objects currently being encoded, to refuse cyclic tables instead of recursing forever. */
  private readonly path: object[] = [];

  constructor(initialSize = 4096) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  reset(): this {
    this.pos = 0;
    // An encode that threw part-way leaves its objects on the cycle-detection path.
    this.path.length = 0;
    return this;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A fresh buffer holding exactly what was written (the Writer itself is reused). */
  copyOut(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    const hi = Math.floor(v / 0x100000000);
    this.buf.writeUInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(v - hi * 0x100000000, this.pos + 4);
    this.pos += 8;
  }
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  shortstr(s: string, field: string): void {
    if (typeof s !== 'string') throw new EncodeError(field, `expected a string, got ${describe(s)}`);
    // utf8 takes at most 3 bytes per UTF-16 unit: reserve that, write, then check the real length.
    this.ensure(1 + s.length * 3);
    let n = writeShortAscii(this.buf, s, this.pos + 1);
    if (n < 0) n = this.buf.write(s, this.pos + 1, 'utf8');
    if (n > 255) throw new EncodeError(field, `short string is ${n} bytes, the limit is 255`);
    this.buf[this.pos] = n;
    this.pos += 1 + n;
  }

  longstr(s: string | Buffer, field: string): void {
    if (Buffer.isBuffer(s)) {
      this.u32(s.length);
      this.bytes(s);
      return;
    }
    if (typeof s !== 'string') throw new EncodeError(field, `expected a string, got ${describe(s)}`);
    this.ensure(4 + s.length * 3);
    let n = writeShortAscii(this.buf, s, this.pos + 4);
    if (n < 0) n = this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeUInt32BE(n, this.pos);
    this.pos += 4 + n;
  }

  timestamp(d: Date | number, field = 'timestamp'): void {
    const ms = d instanceof Date ? d.getTime() : d * 1000;
    if (!Number.isFinite(ms)) throw new EncodeError(field, 'invalid date');
    // AMQP timestamps carry whole seconds.
    this.i64(Math.floor(ms / 1000));
  }

  private i64(v: number | bigint): void {
    this.ensure(8);
    // Safe integers (every timestamp) as two 32-bit halves: BigInt conversion costs more than the write.
    if (typeof v === 'number' && Number.isSafeInteger(v)) writeSafeInt64(this.buf, v, this.pos);
    else this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
  }

  table(t: FieldTable | undefined | null, field: string): void {
    if (t === undefined || t === null) {
      this.u32(0);
      return;
    }
    if (typeof t !== 'object' || Array.isArray(t) || Buffer.isBuffer(t)) {
      throw new EncodeError(field, `expected a table (plain object), got ${describe(t)}`);
    }
    this.enter(t, field);
    this.ensure(4);
    const lenAt = this.pos;
    this.pos += 4;
    for (const key in t) {
      if (!Object.prototype.hasOwnProperty.call(t, key)) continue;
      const path = field + '.' + key;
      this.shortstr(key, path);
      this.value(t[key], path);
    }
    this.buf.writeUInt32BE(this.pos - lenAt - 4, lenAt);
    this.path.pop();
  }

  private array(a: FieldValue[], field: string): void {
    this.enter(a, field);
    this.ensure(4);
    const lenAt = this.pos;
    this.pos += 4;
    for (let i = 0; i < a.length; i++) this.value(a[i], `${field}[${i}]`);
    this.buf.writeUInt32BE(this.pos - lenAt - 4, lenAt);
    this.path.pop();
  }

  private enter(o: object, field: string): void {
    if (this.path.includes(o)) {
      this.path.length = 0;
      throw new EncodeError(field, 'cyclic value cannot be encoded');
    }
    this.path.push(o);
  }

  /** Encode one tagged value, choosing the type that keeps all of its information. */
  private value(v: unknown, field: string): void {
    switch (typeof v) {
      case 'string':
        this.u8(0x53); // S
        this.longstr(v, field);
        return;
      case 'boolean':
        this.u8(0x74); // t
        this.u8(v ? 1 : 0);
        return;
      case 'number':
        this.number(v);
        return;
      case 'bigint':
        if (v < INT64_MIN || v > INT64_MAX) throw new EncodeError(field, `bigint ${v} does not fit in int64`);
        this.u8(0x6c); // l
        this.i64(v);
        return;
      case 'undefined':
        this.u8(0x56); // V
        return;
      case 'object':
        if (v === null) this.u8(0x56);
        else if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
          this.u8(0x78); // x
          this.longstr(Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength), field);
        } else if (v instanceof Date) {
          this.u8(0x54); // T
          this.timestamp(v, field);
        } else if (v instanceof AmqpDecimal) {
          if (!Number.isInteger(v.scale) || v.scale < 0 || v.scale > 255)
            throw new EncodeError(field, `decimal scale must be an integer 0..255, got ${v.scale}`);
          if (!Number.isInteger(v.value) || v.value < INT32_MIN || v.value > INT32_MAX)
            throw new EncodeError(field, `decimal value must be an int32, got ${v.value}`);
          this.u8(0x44); // D
          this.u8(v.scale);
          this.ensure(4);
          this.buf.writeInt32BE(v.value, this.pos);
          this.pos += 4;
        } else if (Array.isArray(v)) {
          this.u8(0x41); // A
          this.array(v as FieldValue[], field);
        } else {
          this.u8(0x46); // F
          this.table(v as FieldTable, field);
        }
        return;
      default:
        this.path.length = 0;
        throw new EncodeError(field, `a ${typeof v} cannot be encoded in a field table`);
    }
  }

  private number(v: number): void {
    if (Number.isInteger(v) && !Object.is(v, -0)) {
      this.ensure(9);
      const b = this.buf;
      if (v >= INT8_MIN && v <= INT8_MAX) {
        b[this.pos++] = 0x62; // b
        b.writeInt8(v, this.pos);
        this.pos += 1;
        return;
      }
      if (v >= INT16_MIN && v <= INT16_MAX) {
        b[this.pos++] = 0x73; // s
        b.writeInt16BE(v, this.pos);
        this.pos += 2;
        return;
      }
      if (v >= INT32_MIN && v <= INT32_MAX) {
        b[this.pos++] = 0x49; // I
        b.writeInt32BE(v, this.pos);
        this.pos += 4;
        return;
      }
      // Every integer-valued double inside int64's range converts to bigint exactly.
      if (v >= -9223372036854775808 && v < 9223372036854775808) {
        b[this.pos++] = 0x6c; // l
        if (Number.isSafeInteger(v)) writeSafeInt64(b, v, this.pos);
        else b.writeBigInt64BE(BigInt(v), this.pos);
        this.pos += 8;
        return;
      }
    }
    // Fractions, huge integers, -0, NaN and infinities: float64 keeps them bit for bit.
    this.ensure(9);
    this.buf[this.pos++] = 0x64; // d
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }
}

/**
 * Strings up to this many UTF-16 units are written by a JS loop when they are ASCII: a native
 * `buf.write` costs ~60-70 ns whatever the length, the loop ~2-3 ns a character (measured on Node 20;
 * bench/codec). Names, routing keys, content types, ids and header keys are nearly all this short.
 */
const ASCII_LOOP_MAX = 24;

/**
 * Write `s` at `pos` if it is short and pure ASCII (then UTF-8 and ASCII bytes coincide) and return
 * the byte count; otherwise return -1 and leave it to `buf.write` (whatever was stored is overwritten).
 * The caller has ensured room for `s.length` bytes at `pos`.
 */
function writeShortAscii(buf: Buffer, s: string, pos: number): number {
  const n = s.length;
  if (n > ASCII_LOOP_MAX) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    buf[pos + i] = c;
  }
  return n;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** A safe integer as a big-endian two's-complement int64: high half (floor division) then low half. */
function writeSafeInt64(buf: Buffer, v: number, pos: number): void {
  const hi = Math.floor(v / 0x100000000);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(v - hi * 0x100000000, pos + 4);
}
