/**
 * The hand-tuned encoders (FrameEncoder.publish for basic.publish + content header + body frames, FrameEncoder.settle
 * for basic.ack / reject / nack) must write exactly what the generic encoders generated from the spec write. Here the
 * reference is built only from the generated tables: the generated method encoders, BASIC_PROPERTIES (order, flag and
 * type of each property), ClassId and the frame constants. Any drift of an offset, id, flag or frame size fails.
 */
import fc from 'fast-check';
import { EncodeError } from '../../lib/amqp/errors';
import type { FieldTable } from '../../lib/amqp/protocol/field-table';
import { FRAME_BODY, FRAME_END, FRAME_HEADER } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder, type SettleMethodId } from '../../lib/amqp/protocol/frame-writer';
import type { MessageProperties } from '../../lib/amqp/protocol/properties';
import { BASIC_PROPERTIES, ClassId, MethodId, type MethodName } from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';
import { fieldArbitrary, shortstr, tableArbitrary } from '../support/codec-arbitraries';

/** One frame around a payload, from the spec's frame layout: type, channel, size, payload, frame-end. */
function frame(type: number, channel: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(payload.length + 8);
  b[0] = type;
  b.writeUInt16BE(channel, 1);
  b.writeUInt32BE(payload.length, 3);
  payload.copy(b, 7);
  b[7 + payload.length] = FRAME_END;
  return b;
}

/** A content-header payload written field by field from BASIC_PROPERTIES (the spec's order, flags and types). */
function genericContentHeader(bodySize: number, props: Record<string, unknown>): Buffer {
  const w = new Writer(64);
  w.u16(ClassId.BASIC);
  w.u16(0); // weight
  w.u64(bodySize);
  let flags = 0;
  for (const p of BASIC_PROPERTIES) if (props[p.name] != null) flags |= p.flag;
  w.u16(flags);
  for (const p of BASIC_PROPERTIES) {
    const v = props[p.name];
    if (v == null) continue;
    const field = `properties.${p.name}`;
    if (p.type === 'shortstr') w.shortstr(v as string, field);
    else if (p.type === 'octet') w.u8(v as number);
    else if (p.type === 'table') w.table(v as FieldTable, field);
    else if (p.type === 'timestamp') w.timestamp(v as Date, field);
    else throw new Error(`no generic encoding for property type ${p.type}`);
  }
  return w.copyOut();
}

interface Publish {
  channel: number;
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  immediate: boolean;
  properties: MessageProperties | undefined;
  body: Buffer;
}

/** What the generic path sends for a publish: the generated basic.publish encoder, the header above, body frames. */
function genericPublish(frameMax: number, p: Publish): Buffer {
  const method = new FrameEncoder(frameMax).method(p.channel, 'basic.publish', {
    exchange: p.exchange,
    routingKey: p.routingKey,
    mandatory: p.mandatory,
    immediate: p.immediate,
  });
  const header = frame(FRAME_HEADER, p.channel, genericContentHeader(p.body.length, { ...p.properties }));
  if (frameMax !== 0 && header.length > frameMax) throw new EncodeError('frame', 'header frame over frame_max');
  const chunk = frameMax === 0 ? p.body.length : frameMax - 8;
  const bodies: Buffer[] = [];
  for (let off = 0; off < p.body.length; off += chunk) {
    bodies.push(frame(FRAME_BODY, p.channel, p.body.subarray(off, off + chunk)));
  }
  return Buffer.concat([method, header, ...bodies]);
}

/** Bytes shared by every body (scrambled, so misplaced bytes cannot match by accident). */
const NOISE = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 2654435761) >>> 24));

/** `n` bytes of NOISE from `at`, printed as such in a counterexample instead of as their bytes. */
function noise(at: number, n: number): Buffer {
  const body = NOISE.subarray(at, at + n);
  Object.defineProperty(body, fc.toStringMethod, { value: () => `noise(${at}, ${n})` });
  return body;
}

const propertiesArbitrary: fc.Arbitrary<MessageProperties> = fc.record(
  Object.fromEntries(
    BASIC_PROPERTIES.map((p) => [p.name, fieldArbitrary(p.type, tableArbitrary({ maxDepth: 2 }))]),
  ) as Record<keyof MessageProperties, fc.Arbitrary<unknown>>,
  { requiredKeys: [] },
) as fc.Arbitrary<MessageProperties>;

const publishArbitrary: fc.Arbitrary<Publish> = fc.record({
  channel: fc.integer({ min: 0, max: 0xffff }),
  exchange: shortstr(),
  routingKey: shortstr(),
  mandatory: fc.boolean(),
  immediate: fc.boolean(),
  properties: fc.option(propertiesArbitrary, { nil: undefined }),
  body: fc
    .oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 600 }) },
      { weight: 2, arbitrary: fc.integer({ min: 4000, max: 20_000 }) },
      // Past COPY_BODY_LIMIT (64 KiB): the body goes out as slices, not copied.
      { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) },
      { weight: 1, arbitrary: fc.constantFrom(0, 1, 65_535, 65_536, 65_537) },
    )
    .chain((n) => fc.integer({ min: 0, max: NOISE.length - n }).map((at) => noise(at, n))),
});

const frameMaxArbitrary = fc.oneof(fc.constantFrom(0, 4096, 8192, 131_072), fc.integer({ min: 4096, max: 1 << 20 }));

describe('hand-tuned encoders', () => {
  it('FrameEncoder.publish writes exactly the generic encoding (generated basic.publish, header, body frames)', () => {
    // One encoder throughout: publishes share its slab, which is replaced as it fills.
    const encoder = new FrameEncoder(0);
    fc.assert(
      fc.property(frameMaxArbitrary, publishArbitrary, (frameMax, p) => {
        let want: Buffer | EncodeError;
        try {
          want = genericPublish(frameMax, p);
        } catch (err) {
          if (!(err instanceof EncodeError)) throw err;
          want = err;
        }
        encoder.frameMax = frameMax;
        const encode = (): Buffer => {
          const out = encoder.publish(
            p.channel,
            p.exchange,
            p.routingKey,
            p.mandatory,
            p.immediate,
            p.properties,
            p.body,
          );
          return Buffer.concat(Array.isArray(out) ? out : [out]);
        };
        if (want instanceof EncodeError) expect(encode).toThrow(EncodeError);
        else expect(encode().equals(want)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  const settleMethods: Array<[MethodName, SettleMethodId, (multiple: boolean, requeue: boolean) => object]> = [
    ['basic.ack', MethodId.BASIC_ACK, (multiple) => ({ multiple })],
    ['basic.reject', MethodId.BASIC_REJECT, (_, requeue) => ({ requeue })],
    ['basic.nack', MethodId.BASIC_NACK, (multiple, requeue) => ({ multiple, requeue })],
  ];

  it.each(settleMethods)(
    'FrameEncoder.settle writes exactly what the generated %s encoder writes (bit i = the i-th bit field)',
    (name, methodId, bitFields) => {
      const encoder = new FrameEncoder(131_072);
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          fieldArbitrary('longlong', fc.constant({})) as fc.Arbitrary<number>,
          fc.boolean(),
          fc.boolean(),
          (channel, deliveryTag, first, second) => {
            const fields = bitFields(first, second);
            const want = encoder.method(channel, name, { deliveryTag, ...fields } as never);
            const bits = Object.values(fields).reduce((acc: number, bit, i) => acc | (bit ? 1 << i : 0), 0);
            const got = Buffer.from(encoder.settle(channel, methodId, deliveryTag, bits));
            expect(got.equals(want)).toBe(true);
          },
        ),
        { numRuns: 1000 },
      );
    },
  );
});
