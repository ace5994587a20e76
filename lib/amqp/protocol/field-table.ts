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
    readonly scale: number,
    readonly value: number,
  ) {}
  toNumber(): number {
    return this.value / 10 ** this.scale;
  }
}

export type FieldValue =
  boolean | number | bigint | string | Buffer | Date | AmqpDecimal | null | undefined | FieldValue[] | FieldTable;

export interface FieldTable {
  [key: string]: FieldValue;
}
