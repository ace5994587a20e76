/**
 * Cross-check against amqplib's codec (an independent implementation of the same spec). Its
 * internals are not in its package "exports", so they are loaded by path.
 *
 * Differences that are normalized before comparing, all on amqplib's side:
 * - long strings (`longstr` method fields, e.g. connection.start-ok `response`) are Buffers in amqplib;
 * - reserved fields have names in amqplib (`ticket`, `capabilities`, `insist`, `knownHosts`,
 *   `outOfBand`, `channelId`, `clusterId`) and are matched to ours by position;
 * - field tables: amqplib decodes `l` with Number() (lossy beyond 2^53), `T` as
 *   `{ '!': 'timestamp', value: seconds }` read unsigned, `D` as `{ '!': 'decimal', value: { places,
 *   digits } }` with the digits read unsigned; it has no Date/bigint/decimal *encoding* except through
 *   `{ '!': type, value }`, encodes -0 as the integer 0, and cannot encode NaN, -Infinity, fractions
 *   of magnitude ≥ 2^50 or `undefined` array elements (it throws or skips them) — so the
 *   amqplib → ours direction only generates what amqplib can express.
 * - `__proto__` and `!` keys are left out: amqplib treats the first as a prototype, the second as a type hint.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import fc from 'fast-check';
import { AmqpDecimal, type FieldTable, type FieldValue } from '../../lib/amqp/protocol/field-table';
import { FRAME_END, FRAME_HEADER, FrameParser, viewSink } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod } from '../../lib/amqp/protocol/methods';
import { decodeContentHeader, encodeContentHeader, type MessageProperties } from '../../lib/amqp/protocol/properties';
import { Reader } from '../../lib/amqp/protocol/reader';
import { METHODS, type MethodArgs, type MethodName, type MethodSpec } from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';
import {
  fieldArbitrary,
  normalizeTable,
  shortstr,
  tableArbitraries,
  type InputTable,
  type InputValue,
} from '../support/codec-arbitraries';

interface AmqplibMethodInfo {
  id: number;
  classId: number;
  methodId: number;
  name: string;
  args: ReadonlyArray<{ name: string; type: string }>;
}
interface AmqplibDefs {
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
  info(id: number): AmqplibMethodInfo | undefined;
}
interface AmqplibParsedFrame {
  type: number;
  channel: number;
  size: number;
  payload: Buffer;
  rest: Buffer;
}
interface AmqplibDecodedFrame {
  id?: number;
  channel: number;
  size?: number;
  fields?: Record<string, unknown>;
}
interface AmqplibFrame {
  parseFrame(bin: Buffer, max: number): AmqplibParsedFrame | false;
  decodeFrame(frame: AmqplibParsedFrame): AmqplibDecodedFrame;
}
interface AmqplibCodec {
  encodeTable(buffer: Buffer, value: unknown, offset: number): number;
  decodeFields(slice: Buffer): Record<string, unknown>;
}

const load = createRequire(__filename);
const lib = path.join(__dirname, '../../node_modules/amqplib/lib');
const defs = load(path.join(lib, 'defs.js')) as AmqplibDefs;
const amqpFrame = load(path.join(lib, 'frame.js')) as AmqplibFrame;
const codec = load(path.join(lib, 'codec.js')) as AmqplibCodec;

/** Decode one complete frame with amqplib. */
function amqplibDecode(bytes: Buffer): AmqplibDecodedFrame {
  const parsed = amqpFrame.parseFrame(bytes, 0);
  if (parsed === false) throw new Error('amqplib: incomplete frame');
  expect(parsed.rest.length).toBe(0);
  return amqpFrame.decodeFrame(parsed);
}

/** Parse one complete frame with ours; the payload is copied out of the view. */
function oursParse(bytes: Buffer): { type: number; channel: number; payload: Buffer } {
  const frames: Array<{ type: number; channel: number; payload: Buffer }> = [];
  new FrameParser(
    viewSink((type, channel, payload) => frames.push({ type, channel, payload: Buffer.from(payload) })),
    2 ** 32,
  ).push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0];
}

// ---- table value views ----

/** How amqplib decodes a value we encoded (see the header comment). */
function amqplibView(v: FieldValue): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'object') return v;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Date) {
    return { '!': 'timestamp', value: Number(BigInt.asUintN(64, BigInt(Math.floor(v.getTime() / 1000)))) };
  }
  if (v instanceof AmqpDecimal) return { '!': 'decimal', value: { places: v.scale, digits: v.value >>> 0 } };
  if (Array.isArray(v)) return v.map(amqplibView);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) out[key] = amqplibView(v[key]);
  return out;
}

/** What amqplib can be asked to encode: plain values and its `{ '!': type, value }` hints. */
type AmqplibValue = InputValue;

const typed = (type: string, value: InputValue): AmqplibValue => ({ '!': type, value });

function amqplibTableArbitrary(): fc.Arbitrary<InputTable> {
  const key = fc
    .string({ unit: 'grapheme', maxLength: 12 })
    .filter((k) => k !== '__proto__' && k !== '!' && Buffer.byteLength(k) <= 255);
  const leaf: fc.Arbitrary<AmqplibValue> = fc.oneof(
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ min: -(2 ** 49), max: 2 ** 49, noNaN: true }),
    fc.constantFrom(-0, Infinity, 127, 128, -129, 32768, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u)),
    fc.constant(null),
    fc.integer({ min: 0, max: 8.64e12 }).map((s) => typed('timestamp', s)),
    fc
      .record({ places: fc.integer({ min: 0, max: 255 }), digits: fc.integer({ min: 0, max: 0xffffffff }) })
      .map((d) => typed('decimal', d)),
    fc.float({ noNaN: true }).map((f) => typed('float', f)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((b) => typed('long', b)),
    fc.integer({ min: 0, max: 255 }).map((n) => typed('unsignedbyte', n)),
    fc.integer({ min: 0, max: 0xffff }).map((n) => typed('uint16', n)),
    fc.integer({ min: 0, max: 0xffffffff }).map((n) => typed('uint32', n)),
  );
  return fc.letrec<{ value: AmqplibValue; table: InputTable; array: AmqplibValue[] }>((tie) => ({
    value: fc.oneof({ maxDepth: 3, depthIdentifier: 'amqplib' }, leaf, leaf, tie('array'), tie('table')),
    array: fc.array(tie('value'), { maxLength: 4, depthIdentifier: 'amqplib' }),
    table: fc.dictionary(key, tie('value'), { maxKeys: 4, depthIdentifier: 'amqplib', noNullPrototype: true }),
  })).table;
}

function isTyped(v: object): v is { '!': string; value: InputValue } {
  return Object.prototype.hasOwnProperty.call(v, '!');
}

/** How we decode a value amqplib encoded. */
function oursView(v: AmqplibValue): FieldValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (typeof v !== 'object' || Buffer.isBuffer(v)) return v as FieldValue;
  if (Array.isArray(v)) return v.map(oursView);
  if (isTyped(v)) {
    const value = v.value;
    switch (v['!']) {
      case 'timestamp':
        return new Date((value as number) * 1000);
      case 'decimal': {
        const d = value as { places: number; digits: number };
        return new AmqpDecimal(d.places, d.digits | 0);
      }
      case 'float':
        return Math.fround(value as number);
      case 'long': {
        const b = value as bigint;
        return b >= -(2n ** 53n) && b < 2n ** 53n ? Number(b) : b;
      }
      default:
        return value as number;
    }
  }
  const out: FieldTable = {};
  for (const key of Object.keys(v)) out[key] = oursView((v as InputTable)[key]);
  return out;
}

const oursTable = tableArbitraries({ allowProtoKey: false, maxDepth: 3 }).table;
const amqplibTable = amqplibTableArbitrary();

// ---- methods ----

const RESERVED_ZERO: Record<string, unknown> = {
  short: 0,
  shortstr: '',
  longstr: Buffer.alloc(0),
  bit: false,
  octet: 0,
};

function argsArbitrary(spec: MethodSpec, table: fc.Arbitrary<InputTable>): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of spec.fields) if (!f.reserved) model[f.name] = fieldArbitrary(f.type, table);
  return fc.record(model);
}

describe('cross-check with amqplib', () => {
  it('agrees on every method: ids, field count and field types (by position)', () => {
    for (const spec of METHODS) {
      const info = defs.info(spec.id);
      expect(info).toBeDefined();
      expect([info?.classId, info?.methodId]).toEqual([spec.classId, spec.methodId]);
      expect(info?.args.map((a) => a.type)).toEqual(spec.fields.map((f) => f.type));
    }
  });

  describe.each(METHODS.map((m) => [m.name, m] as const))('%s', (_name, spec) => {
    const info = defs.info(spec.id) as AmqplibMethodInfo;
    const encoder = new FrameEncoder(0);

    it('ours → amqplib decodes the same field values', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xffff }), argsArbitrary(spec, oursTable), (channel, args) => {
          const bytes = encoder.method(channel, spec.name as MethodName, args as unknown as MethodArgs[MethodName]);
          const decoded = amqplibDecode(bytes);
          expect(decoded.id).toBe(spec.id);
          expect(decoded.channel).toBe(channel);
          const expected: Record<string, unknown> = {};
          spec.fields.forEach((f, i) => {
            const v = args[f.name];
            expected[info.args[i].name] = f.reserved
              ? RESERVED_ZERO[f.type]
              : f.type === 'longstr'
                ? Buffer.from(v as string)
                : f.type === 'table'
                  ? amqplibView(normalizeTable(v as InputTable))
                  : v;
          });
          expect(decoded.fields).toEqual(expected);
        }),
        { numRuns: 25 },
      );
    });

    it('amqplib → ours decodes the same field values', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xffff }), argsArbitrary(spec, amqplibTable), (channel, args) => {
          const fields: Record<string, unknown> = {};
          const expected: Record<string, unknown> = {};
          spec.fields.forEach((f, i) => {
            const name = info.args[i].name;
            if (f.reserved) {
              fields[name] = RESERVED_ZERO[f.type];
              return;
            }
            const v = args[f.name];
            fields[name] = f.type === 'longstr' ? Buffer.from(v as string) : v;
            expected[f.name] = f.type === 'table' ? oursView(v as InputTable) : v;
          });
          const frame = oursParse(defs.encodeMethod(spec.id, channel, fields));
          expect(frame.channel).toBe(channel);
          const decoded = decodeMethod(frame.payload);
          expect(decoded.name).toBe(spec.name);
          expect(decoded.args).toStrictEqual(expected);
        }),
        { numRuns: 25 },
      );
    });
  });

  describe('content header properties', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const props = (
      table: fc.Arbitrary<InputTable>,
      timestamp: fc.Arbitrary<unknown>,
    ): fc.Arbitrary<Record<string, unknown>> =>
      fc.record(
        {
          contentType: shortstr(),
          contentEncoding: shortstr(),
          headers: table,
          deliveryMode: octet,
          priority: octet,
          correlationId: shortstr(),
          replyTo: shortstr(),
          expiration: shortstr(),
          messageId: shortstr(),
          timestamp,
          type: shortstr(),
          userId: shortstr(),
          appId: shortstr(),
          clusterId: shortstr(),
        },
        { requiredKeys: [] },
      );
    const bodySize = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    );

    it('ours → amqplib decodes the same properties and body size', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          bodySize,
          props(oursTable, fc.date({ noInvalidDate: true })),
          (channel, size, p) => {
            const w = new Writer(64);
            encodeContentHeader(w, size, p as MessageProperties);
            const payload = w.copyOut();
            const bytes = Buffer.alloc(payload.length + 8);
            bytes[0] = FRAME_HEADER;
            bytes.writeUInt16BE(channel, 1);
            bytes.writeUInt32BE(payload.length, 3);
            payload.copy(bytes, 7);
            bytes[bytes.length - 1] = FRAME_END;
            const decoded = amqplibDecode(bytes);
            expect(decoded.id).toBe(60);
            expect(decoded.channel).toBe(channel);
            expect(decoded.size).toBe(size);
            const expected: Record<string, unknown> = { ...p };
            if (p.headers !== undefined) expected.headers = amqplibView(normalizeTable(p.headers as InputTable));
            if (p.timestamp instanceof Date) {
              expected.timestamp = Number(BigInt.asUintN(64, BigInt(Math.floor(p.timestamp.getTime() / 1000))));
            }
            expect(decoded.fields).toEqual(expected);
          },
        ),
        { numRuns: 200 },
      );
    });

    it('amqplib → ours decodes the same properties and body size', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          bodySize,
          props(amqplibTable, fc.integer({ min: 0, max: 8.64e12 })),
          (channel, size, p) => {
            const frame = oursParse(defs.encodeProperties(60, channel, size, p));
            expect(frame.type).toBe(FRAME_HEADER);
            expect(frame.channel).toBe(channel);
            const h = decodeContentHeader(frame.payload, Number.MAX_SAFE_INTEGER);
            expect(h.bodySize).toBe(size);
            const expected: Record<string, unknown> = { ...p };
            if (p.headers !== undefined) expected.headers = oursView(p.headers as InputTable);
            if (typeof p.timestamp === 'number') expected.timestamp = new Date(p.timestamp * 1000);
            expect(h.properties.toJSON()).toStrictEqual(expected);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('field tables', () => {
    it('ours → amqplib: the same values, after normalizing its decoding', () => {
      fc.assert(
        fc.property(oursTable, (t) => {
          const w = new Writer(64);
          w.table(t as FieldTable, 't');
          const bytes = w.copyOut();
          expect(codec.decodeFields(bytes.subarray(4))).toEqual(amqplibView(normalizeTable(t)));
        }),
        { numRuns: 300 },
      );
    });

    it('amqplib → ours: the same values, after normalizing its encoding', () => {
      fc.assert(
        fc.property(amqplibTable, (t) => {
          const buf = Buffer.alloc(65536);
          const n = codec.encodeTable(buf, t, 0);
          const r = new Reader(buf.subarray(0, n));
          expect(r.table()).toStrictEqual(oursView(t));
          expect(r.pos).toBe(n);
        }),
        { numRuns: 300 },
      );
    });

    it('chooses the same integer tags as amqplib (b/s/I/l) and d for fractions', () => {
      for (const v of [
        0,
        -1,
        127,
        128,
        -128,
        -129,
        32767,
        32768,
        -32769,
        2 ** 31 - 1,
        2 ** 31,
        -(2 ** 31) - 1,
        2 ** 40,
        1.5,
        -0.25,
      ]) {
        const ours = new Writer(64);
        ours.table({ k: v }, 't');
        const theirs = Buffer.alloc(64);
        const n = codec.encodeTable(theirs, { k: v }, 0);
        expect(ours.copyOut()).toEqual(theirs.subarray(0, n));
      }
    });
  });
});
