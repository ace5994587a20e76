/**
 * Field-table values as RabbitMQ encodes them (its errata type tags, not the spec's table):
 *
 *   t bool · b int8 · B uint8 · s int16 · u uint16 · I int32 · i uint32 · l int64 · f float32 · d float64
 *   D decimal · S long string · A array · T timestamp · F nested table · V void · x byte array
 *
 * Decoding is exact: an int64 outside ±2^53 comes back as a `bigint`, `x` as a Buffer, `D` as an
 * `AmqpDecimal`, `T` as a Date, `V` as null. Encoding never loses information (see `writer.ts`).
 */

/** A fixed-point decimal: `value × 10^-scale`. */
export class AmqpDecimal {
  constructor(
    /** How many decimal places: the power of ten `value` is divided by, an integer 0 to 255. */
    readonly scale: number,
    /** The unscaled value, a signed 32-bit integer. */
    readonly value: number,
  ) {}

  /** The value as a (possibly inexact) JavaScript number. */
  toNumber(): number {
    return this.value / 10 ** this.scale;
  }
}

/** One value of a field table or field array, as the decoder returns it and the encoder takes it. */
export type FieldValue =
  boolean | number | bigint | string | Buffer | Date | AmqpDecimal | null | undefined | FieldValue[] | FieldTable;

/** A field table (AMQP `table`): headers, arguments, client and server properties. */
export interface FieldTable {
  [key: string]: FieldValue;
}
