/**
 * fast-check arbitraries shared by the codec tests: field values and tables of every kind, method
 * arguments built from the generated METHODS table, and the normalization that describes exactly
 * what a field-table round trip is allowed to change.
 */
import fc from 'fast-check';
import { AmqpDecimal, type FieldTable, type FieldValue } from '../../lib/amqp/protocol/field-table';
import type { MethodSpec } from '../../lib/amqp/protocol/spec.generated';

/** What a caller may hand the encoder: field values plus `Uint8Array` (encoded like a Buffer). */
export type InputValue =
  | FieldValue
  | Uint8Array
  | InputValue[]
  | {
      [key: string]: InputValue;
    };
export type InputTable = { [key: string]: InputValue };

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const TWO_53 = 2 ** 53;
const TWO_63 = 2 ** 63;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

export const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A short string: at most 255 UTF-8 bytes, from multi-code-point graphemes to the exact limit. */
export function shortstr(): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 6, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 240, maxLength: 255 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 40, maxLength: 90 }) },
    )
    .filter((s) => utf8Length(s) <= 255);
}

/** A long string (any valid Unicode, no lone surrogates: those cannot survive UTF-8). */
export function longstr(): fc.Arbitrary<string> {
  return fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 300 }));
}

/** Table keys; `allowProto` admits `__proto__`, which a decoder must keep as an own key. */
export function tableKey(allowProto = true): fc.Arbitrary<string> {
  const key = fc
    .oneof(
      { weight: 8, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 250, maxLength: 255 }) },
    )
    .filter((s) => utf8Length(s) <= 255);
  return allowProto ? key : key.filter((k) => k !== '__proto__');
}

/** Numbers chosen to hit every encoding boundary (b/s/I/l/d) plus anything fast-check likes. */
const BOUNDARY_NUMBERS = [
  0,
  -0,
  1.5,
  127,
  128,
  -128,
  -129,
  32767,
  32768,
  -32768,
  -32769,
  INT32_MAX,
  INT32_MAX + 1,
  INT32_MIN,
  INT32_MIN - 1,
  2 ** 40,
  TWO_53 - 1,
  TWO_53,
  -TWO_53,
  2 ** 60,
  -TWO_63,
  TWO_63,
  2 ** 64,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  NaN,
  Infinity,
  -Infinity,
];

/** Every leaf kind the encoder accepts. */
export function leafValue(): fc.Arbitrary<InputValue> {
  return fc.oneof(
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.constantFrom(...BOUNDARY_NUMBERS),
    fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u)),
    // A Uint8Array view at a non-zero offset into a larger buffer.
    fc.uint8Array({ maxLength: 24 }).map((u) => {
      const big = new Uint8Array(u.length + 3);
      big.set(u, 3);
      return big.subarray(3);
    }),
    fc.date({ noInvalidDate: true }),
    fc
      .record({ scale: fc.integer({ min: 0, max: 255 }), value: fc.integer() })
      .map(({ scale, value }) => new AmqpDecimal(scale, value)),
    fc.constant(null),
    fc.constant(undefined),
  );
}

/** Nested tables and arrays of every value kind (bounded depth and width, so runs stay fast). */
export function tableArbitraries(options: { allowProtoKey?: boolean; maxDepth?: number } = {}): {
  value: fc.Arbitrary<InputValue>;
  table: fc.Arbitrary<InputTable>;
  array: fc.Arbitrary<InputValue[]>;
} {
  const maxDepth = options.maxDepth ?? 3;
  const key = tableKey(options.allowProtoKey ?? true);
  const leaf = leafValue();
  return fc.letrec<{ value: InputValue; table: InputTable; array: InputValue[] }>((tie) => ({
    value: fc.oneof({ maxDepth, depthIdentifier: 'field-value' }, leaf, leaf, tie('array'), tie('table')),
    array: fc.array(tie('value'), { maxLength: 5, depthIdentifier: 'field-value' }),
    table: fc.dictionary(key, tie('value'), { maxKeys: 5, depthIdentifier: 'field-value' }),
  }));
}

export function tableArbitrary(options: { allowProtoKey?: boolean; maxDepth?: number } = {}): fc.Arbitrary<InputTable> {
  return tableArbitraries(options).table;
}

/** Set a key on a plain object, `__proto__` included (as an own property, like the decoder does). */
export function setKey<T>(o: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/**
 * What decoding an encoded value yields: undefined → null; Date → whole seconds; integers outside
 * int32 travel as int64 (`l`) and come back as a number within [-2^53, 2^53), a bigint beyond;
 * bigints likewise; Uint8Array → Buffer; everything else (strings, booleans, doubles incl. -0/NaN/±∞,
 * decimals) unchanged.
 */
export function normalizeValue(v: InputValue): FieldValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Object.is(v, -0) && (v < INT32_MIN || v > INT32_MAX) && v >= -TWO_63 && v < TWO_63) {
      return v >= -TWO_53 && v < TWO_53 ? v : BigInt(v);
    }
    return v;
  }
  if (typeof v === 'bigint') return v >= -(2n ** 53n) && v < 2n ** 53n ? Number(v) : v;
  if (typeof v !== 'object') return v;
  if (v instanceof Date) return new Date(Math.floor(v.getTime() / 1000) * 1000);
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (v instanceof AmqpDecimal) return v;
  if (Array.isArray(v)) return v.map(normalizeValue);
  return normalizeTable(v);
}

export function normalizeTable(t: InputTable): FieldTable {
  const out: FieldTable = {};
  for (const key of Object.keys(t)) setKey(out, key, normalizeValue(t[key]));
  return out;
}

/** The argument arbitrary for one field type of the spec. */
export function fieldArbitrary(type: string, table: fc.Arbitrary<InputTable>): fc.Arbitrary<unknown> {
  switch (type) {
    case 'octet':
      return fc.integer({ min: 0, max: 0xff });
    case 'short':
      return fc.integer({ min: 0, max: 0xffff });
    case 'long':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'longlong':
      return fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 2 ** 32, 2 ** 53 - 1));
    case 'shortstr':
      return shortstr();
    case 'longstr':
      return longstr();
    case 'bit':
      return fc.boolean();
    case 'table':
      return table;
    case 'timestamp':
      return fc.integer({ min: -8.64e12, max: 8.64e12 }).map((s) => new Date(s * 1000));
    default:
      throw new Error(`no arbitrary for field type ${type}`);
  }
}

/** Arguments for a method: every non-reserved field of the spec, nothing else. */
export function methodArgsArbitrary(
  spec: MethodSpec,
  table: fc.Arbitrary<InputTable> = tableArbitrary({ maxDepth: 2 }),
): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of spec.fields) if (!f.reserved) model[f.name] = fieldArbitrary(f.type, table);
  return fc.record(model);
}

/** The decoded form of method arguments: tables normalized, the rest unchanged. */
export function normalizeArgs(spec: MethodSpec, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) {
    if (f.reserved) continue;
    const v = args[f.name];
    out[f.name] = f.type === 'table' ? normalizeTable(v as InputTable) : v;
  }
  return out;
}
