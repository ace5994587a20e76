import fc from 'fast-check';
import { EncodeError, ProtocolError, ReplyCode } from '../../lib/amqp/errors';
import { AmqpDecimal, type FieldTable, type FieldValue } from '../../lib/amqp/protocol/field-table';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { Reader } from '../../lib/amqp/protocol/reader';
import { Writer } from '../../lib/amqp/protocol/writer';
import {
  normalizeTable,
  normalizeValue,
  tableArbitraries,
  type InputTable,
  type InputValue,
} from '../support/codec-arbitraries';

function encodeTable(t: InputTable, field = 'h'): Buffer {
  const w = new Writer(64);
  w.table(t as FieldTable, field);
  return w.copyOut();
}

function decodeTable(bytes: Buffer): FieldTable {
  const r = new Reader(bytes);
  const t = r.table();
  expect(r.pos).toBe(bytes.length);
  return t;
}

/** Encode `{ k: value }` and return the type tag (the first byte after the one-letter key) and the decoded value. */
function single(value: InputValue): { tag: string; decoded: FieldValue; bytes: Buffer } {
  const bytes = encodeTable({ k: value });
  expect(bytes[4]).toBe(1);
  expect(String.fromCharCode(bytes[5])).toBe('k');
  return { tag: String.fromCharCode(bytes[6]), decoded: decodeTable(bytes).k, bytes };
}

// ---- hand-built field tables ----

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
/** One table entry: short-string key, tag letter, value bytes. */
function entry(key: string, tag: string, value: Buffer | number[]): Buffer {
  const k = Buffer.from(key);
  return Buffer.concat([Buffer.from([k.length]), k, Buffer.from(tag), Buffer.from(value)]);
}
function table(...entries: Buffer[]): Buffer {
  const body = Buffer.concat(entries);
  return Buffer.concat([u32(body.length), body]);
}
function be64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
}
function f32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatBE(v);
  return b;
}
function f64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v);
  return b;
}
function longstr(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u32(b.length), b]);
}

function encodeError(fn: () => unknown): EncodeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EncodeError) return err;
    throw new Error(`expected an EncodeError, got ${String(err)}`);
  }
  throw new Error('expected an EncodeError, nothing was thrown');
}

describe('field tables', () => {
  describe('round trip', () => {
    const { table: tableArb, array: arrayArb } = tableArbitraries({ maxDepth: 4 });

    it('decodes random nested tables exactly, under the documented normalizations', () => {
      fc.assert(
        fc.property(tableArb, (t) => {
          expect(decodeTable(encodeTable(t))).toStrictEqual(normalizeTable(t));
        }),
        { numRuns: 400 },
      );
    });

    it('decodes random arrays nested in a table', () => {
      fc.assert(
        fc.property(arrayArb, (a) => {
          expect(decodeTable(encodeTable({ a })).a).toStrictEqual(a.map(normalizeValue));
        }),
        { numRuns: 200 },
      );
    });

    it('is stable: a decoded table re-encodes to the same bytes and decodes to itself', () => {
      fc.assert(
        fc.property(tableArb, (t) => {
          const once = decodeTable(encodeTable(t));
          const bytes = encodeTable(once);
          expect(decodeTable(bytes)).toStrictEqual(once);
          expect(encodeTable(decodeTable(bytes))).toEqual(bytes);
        }),
        { numRuns: 200 },
      );
    });

    it('keeps a `__proto__` key as data, never as the prototype of the decoded table', () => {
      const t: InputTable = JSON.parse('{"__proto__": {"polluted": 1}, "a": 2}') as InputTable;
      const decoded = decodeTable(encodeTable(t));
      expect(Object.keys(decoded)).toEqual(['__proto__', 'a']);
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toEqual({ polluted: 1 });
      expect((decoded as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('normalizes undefined → null, Date → whole seconds, Uint8Array → Buffer, big ints → bigint', () => {
      const decoded = decodeTable(
        encodeTable({
          u: undefined,
          d: new Date(1_700_000_000_999),
          before1970: new Date(-1500),
          bytes: new Uint8Array([1, 2, 3]).subarray(1),
          big: 2 ** 60,
          small: 2n ** 40n,
          edge: 2 ** 53,
          belowEdge: 2 ** 53 - 1,
        }),
      );
      expect(decoded.u).toBeNull();
      expect(decoded.d).toEqual(new Date(1_700_000_000_000));
      expect(decoded.before1970).toEqual(new Date(-2000));
      expect(Buffer.isBuffer(decoded.bytes)).toBe(true);
      expect(decoded.bytes).toEqual(Buffer.from([2, 3]));
      expect(decoded.big).toBe(2n ** 60n);
      expect(decoded.small).toBe(2 ** 40);
      expect(decoded.edge).toBe(2n ** 53n);
      expect(decoded.belowEdge).toBe(2 ** 53 - 1);
    });

    it('lets the same (non-cyclic) object appear twice', () => {
      const shared = { x: 1 };
      expect(decodeTable(encodeTable({ a: shared, b: [shared, shared] }))).toEqual({ a: shared, b: [shared, shared] });
    });
  });

  describe('type tags chosen by the encoder', () => {
    const cases: Array<[string, InputValue, string, FieldValue]> = [
      ['0', 0, 'b', 0],
      ['127', 127, 'b', 127],
      ['-128', -128, 'b', -128],
      ['128', 128, 's', 128],
      ['-129', -129, 's', -129],
      ['32767', 32767, 's', 32767],
      ['32768', 32768, 'I', 32768],
      ['-32769', -32769, 'I', -32769],
      ['2^31 - 1', 2 ** 31 - 1, 'I', 2 ** 31 - 1],
      ['2^31', 2 ** 31, 'l', 2 ** 31],
      ['-2^31 - 1', -(2 ** 31) - 1, 'l', -(2 ** 31) - 1],
      ['2^40', 2 ** 40, 'l', 2 ** 40],
      ['-2^63', -(2 ** 63), 'l', -(2n ** 63n)],
      ['2^63', 2 ** 63, 'd', 2 ** 63],
      ['2^64', 2 ** 64, 'd', 2 ** 64],
      ['1.5', 1.5, 'd', 1.5],
      ['0.1', 0.1, 'd', 0.1],
      ['-0', -0, 'd', -0],
      ['NaN', NaN, 'd', NaN],
      ['Infinity', Infinity, 'd', Infinity],
      ['-Infinity', -Infinity, 'd', -Infinity],
      ['2n ** 62n', 2n ** 62n, 'l', 2n ** 62n],
      ['5n', 5n, 'l', 5],
      ['-(2n ** 63n)', -(2n ** 63n), 'l', -(2n ** 63n)],
      ['Buffer', Buffer.from('hi'), 'x', Buffer.from('hi')],
      ['Uint8Array', new Uint8Array([7]), 'x', Buffer.from([7])],
      ['Date', new Date(86_400_000), 'T', new Date(86_400_000)],
      ['decimal', new AmqpDecimal(3, -12345), 'D', new AmqpDecimal(3, -12345)],
      ['true', true, 't', true],
      ['false', false, 't', false],
      ['null', null, 'V', null],
      ['undefined', undefined, 'V', null],
      ['string', 'héllo', 'S', 'héllo'],
      ['empty string', '', 'S', ''],
      ['array', [1, 'a'], 'A', [1, 'a']],
      ['table', { n: {} }, 'F', { n: {} }],
    ];

    it.each(cases)('%s → %p', (_label, value, tag, decoded) => {
      const got = single(value);
      expect(got.tag).toBe(tag);
      expect(got.decoded).toStrictEqual(decoded);
    });

    it('never uses float32 (f): a fraction exactly representable in float32 still goes as d', () => {
      expect(single(0.5).tag).toBe('d');
      expect(single(Math.fround(0.1)).tag).toBe('d');
    });

    it('writes the value bytes in the sizes the tags announce', () => {
      expect(single(127).bytes.length).toBe(4 + 1 + 1 + 1 + 1);
      expect(single(128).bytes.length).toBe(4 + 3 + 2);
      expect(single(32768).bytes.length).toBe(4 + 3 + 4);
      expect(single(2 ** 31).bytes.length).toBe(4 + 3 + 8);
      expect(single(1.5).bytes.length).toBe(4 + 3 + 8);
      expect(single(new AmqpDecimal(2, 1)).bytes.length).toBe(4 + 3 + 5);
      expect(single(new Date(0)).bytes.length).toBe(4 + 3 + 8);
      expect(single(null).bytes.length).toBe(4 + 3);
      expect(single(-1).bytes.subarray(7)).toEqual(Buffer.from([0xff]));
      expect(single(-200).bytes.readInt16BE(7)).toBe(-200);
      expect(single(-0).bytes.readDoubleBE(7)).toBe(-0);
      expect(single(2n ** 62n).bytes.readBigInt64BE(7)).toBe(2n ** 62n);
      expect(single(new Date(5_000)).bytes.readBigInt64BE(7)).toBe(5n);
      expect(single('ab').bytes.subarray(7)).toEqual(Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
    });
  });

  describe('decoding every tag from hand-built bytes', () => {
    it('decodes t b B s u I i l f d D S A T F V x', () => {
      const bytes = table(
        entry('t1', 't', [1]),
        entry('t0', 't', [0]),
        entry('t2', 't', [2]),
        entry('b', 'b', [0xff]),
        entry('B', 'B', [0xff]),
        entry('s', 's', [0xff, 0xfe]),
        entry('u', 'u', [0xff, 0xfe]),
        entry('I', 'I', [0xff, 0xff, 0xff, 0xfe]),
        entry('i', 'i', [0xff, 0xff, 0xff, 0xfe]),
        entry('l-1', 'l', be64(-1n)),
        entry('lmax', 'l', be64(2n ** 63n - 1n)),
        entry('lmin', 'l', be64(-(2n ** 63n))),
        entry('l53', 'l', be64(2n ** 53n)),
        entry('l53-1', 'l', be64(2n ** 53n - 1n)),
        entry('l-53', 'l', be64(-(2n ** 53n))),
        entry('l-53-1', 'l', be64(-(2n ** 53n) - 1n)),
        entry('f', 'f', f32(1.5)),
        entry('f0.1', 'f', f32(0.1)),
        entry('d', 'd', f64(-0.25)),
        entry('D', 'D', [2, 0xff, 0xff, 0xcf, 0xc7]),
        entry('S', 'S', longstr('ünïcode')),
        entry('A', 'A', longstr(Buffer.concat([Buffer.from('b'), Buffer.from([5]), Buffer.from('V')]))),
        entry('T', 'T', be64(1_700_000_000n)),
        entry('F', 'F', table(entry('in', 'V', []))),
        entry('V', 'V', []),
        entry('x', 'x', longstr(Buffer.from([0, 1, 2]))),
        entry('', 'S', longstr('')),
      );
      expect(decodeTable(bytes)).toStrictEqual({
        t1: true,
        t0: false,
        t2: true,
        b: -1,
        B: 255,
        s: -2,
        u: 65534,
        I: -2,
        i: 4294967294,
        'l-1': -1,
        lmax: 2n ** 63n - 1n,
        lmin: -(2n ** 63n),
        l53: 2n ** 53n,
        'l53-1': 2 ** 53 - 1,
        'l-53': -(2 ** 53),
        'l-53-1': -(2n ** 53n) - 1n,
        f: 1.5,
        'f0.1': Math.fround(0.1),
        d: -0.25,
        D: new AmqpDecimal(2, -12345),
        S: 'ünïcode',
        A: [5, null],
        T: new Date(1_700_000_000_000),
        F: { in: null },
        V: null,
        x: Buffer.from([0, 1, 2]),
        '': '',
      });
    });

    it('copies byte arrays (x) out of the frame instead of pinning it', () => {
      const bytes = table(entry('x', 'x', longstr(Buffer.from([9, 9]))));
      const x = decodeTable(bytes).x as Buffer;
      bytes.fill(0);
      expect(x).toEqual(Buffer.from([9, 9]));
    });

    it('keeps the last value of a duplicated key', () => {
      expect(decodeTable(table(entry('a', 'b', [1]), entry('a', 'b', [2])))).toEqual({ a: 2 });
    });

    it('refuses an unknown tag with a 502 ProtocolError', () => {
      for (const tag of ['Z', 'c', '\u0000', 'L']) {
        const fn = (): unknown => decodeTable(table(entry('k', tag, [0, 0, 0, 0, 0, 0, 0, 0])));
        expect(fn).toThrow(ProtocolError);
        expect(fn).toThrow(expect.objectContaining({ replyCode: ReplyCode.SYNTAX_ERROR }));
      }
    });
  });

  describe('values that cannot be encoded', () => {
    it('names the key path of a function', () => {
      const err = encodeError(() => encodeTable({ a: { b: (() => 1) as unknown as InputValue } }));
      expect(err.field).toBe('h.a.b');
      expect(err.message).toMatch(/function/);
    });

    it('names the key path of a symbol inside an array', () => {
      const err = encodeError(() => encodeTable({ list: [1, Symbol('s') as unknown as InputValue] }));
      expect(err.field).toBe('h.list[1]');
      expect(err.message).toMatch(/symbol/);
    });

    it('refuses a cyclic object, naming where the cycle closes', () => {
      const t: InputTable = { a: {} };
      (t.a as InputTable).self = t;
      expect(encodeError(() => encodeTable(t)).field).toBe('h.a.self');
    });

    it('refuses a cyclic array', () => {
      const list: InputValue[] = [1];
      list.push(list);
      const err = encodeError(() => encodeTable({ list }));
      expect(err.field).toBe('h.list[1]');
      expect(err.message).toMatch(/cyclic/);
    });

    it('refuses a key longer than 255 UTF-8 bytes (and accepts exactly 255)', () => {
      const ok = 'k'.repeat(255);
      expect(decodeTable(encodeTable({ [ok]: 1 }))).toEqual({ [ok]: 1 });
      const long = 'é'.repeat(128); // 256 bytes, 128 chars
      const err = encodeError(() => encodeTable({ nested: { [long]: 1 } }));
      expect(err.field).toBe(`h.nested.${long}`);
      expect(err.message).toMatch(/256 bytes/);
    });

    it('refuses a bigint outside int64', () => {
      expect(encodeError(() => encodeTable({ n: 2n ** 63n })).field).toBe('h.n');
      expect(encodeError(() => encodeTable({ n: -(2n ** 63n) - 1n })).field).toBe('h.n');
    });

    it('refuses a non-table where a table is expected', () => {
      const w = new Writer();
      expect(encodeError(() => w.table([] as unknown as FieldTable, 'args')).field).toBe('args');
      expect(encodeError(() => w.table('x' as unknown as FieldTable, 'args')).field).toBe('args');
    });

    it('encodes fine with a fresh writer after an error', () => {
      const w = new Writer();
      expect(() => w.table({ f: (() => 1) as unknown as FieldValue }, 'h')).toThrow(EncodeError);
      w.reset().table({ ok: 1 }, 'h');
      expect(new Reader(w.copyOut()).table()).toEqual({ ok: 1 });
    });

    // Regression: an EncodeError thrown by shortstr()/a bigint/a Date inside a table used to leave the
    // objects on the Writer's cycle-detection stack, so the connection's reused Writer later called the
    // same (now valid) object "cyclic".
    it('recovers from an EncodeError inside a nested table on a reused writer', () => {
      const encoder = new FrameEncoder(0);
      const inner: InputTable = { ['k'.repeat(300)]: 1 };
      const args = { queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false };
      const bad = { ...args, arguments: { inner } as FieldTable };
      expect(() => encoder.method(1, 'queue.declare', bad)).toThrow(EncodeError);
      delete inner['k'.repeat(300)];
      expect(() => encoder.method(1, 'queue.declare', bad)).not.toThrow();
    });
  });
});
