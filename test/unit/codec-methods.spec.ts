import fc from 'fast-check';
import type { FieldTable } from '../../lib/amqp/protocol/field-table';
import { FrameParser, FRAME_END, FRAME_METHOD, viewSink } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod, METHOD_IDS } from '../../lib/amqp/protocol/methods';
import {
  METHODS,
  METHODS_BY_ID,
  type MethodArgs,
  type MethodName,
  type MethodSpec,
} from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';
import { methodArgsArbitrary, normalizeArgs, utf8Length } from '../support/codec-arbitraries';

interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

/** Parse a complete byte stream with our streaming parser; payloads are copied out of the views. */
function parseAll(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser(
    viewSink((type, channel, payload) => {
      frames.push({ type, channel, payload: Buffer.from(payload) });
    }),
    2 ** 32,
  );
  parser.push(bytes);
  return frames;
}

function encode(encoder: FrameEncoder, channel: number, name: string, args: Record<string, unknown>): Buffer {
  return encoder.method(channel, name as MethodName, args as unknown as MethodArgs[MethodName]);
}

const FIXED_SIZE: Record<string, number> = { octet: 1, short: 2, long: 4, longlong: 8, timestamp: 8 };

/**
 * The payload size the spec mandates for these arguments: consecutive bit fields share one octet
 * (up to 8 per octet), every other field its wire size. Reserved fields travel as zero/empty.
 */
function expectedPayloadSize(spec: MethodSpec, args: Record<string, unknown>): number {
  let size = 4;
  let bitsInOctet = 0;
  const tables = new Writer(256);
  for (const f of spec.fields) {
    if (f.type === 'bit') {
      if (bitsInOctet === 0 || bitsInOctet === 8) {
        size += 1;
        bitsInOctet = 0;
      }
      bitsInOctet++;
      continue;
    }
    bitsInOctet = 0;
    const v = args[f.name];
    if (f.type in FIXED_SIZE) size += FIXED_SIZE[f.type];
    else if (f.type === 'shortstr') size += 1 + (f.reserved ? 0 : utf8Length(v as string));
    else if (f.type === 'longstr') size += 4 + (f.reserved ? 0 : utf8Length(v as string));
    else if (f.type === 'table') {
      tables.reset().table(f.reserved ? {} : (v as FieldTable), f.name);
      size += tables.pos;
    } else throw new Error(`unexpected field type ${f.type} in ${spec.name}`);
  }
  return size;
}

describe('method codec', () => {
  const encoder = new FrameEncoder(0);

  it('knows every field type the spec uses', () => {
    const known = new Set(['octet', 'short', 'long', 'longlong', 'shortstr', 'longstr', 'bit', 'table', 'timestamp']);
    for (const m of METHODS) for (const f of m.fields) expect(known).toContain(f.type);
    expect(METHODS.length).toBeGreaterThanOrEqual(64);
  });

  describe.each(METHODS.map((m) => [m.name, m] as const))('%s', (_name, spec) => {
    it('round-trips random arguments through FrameEncoder → FrameParser → decodeMethod', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xffff }), methodArgsArbitrary(spec), (channel, args) => {
          const bytes = encode(encoder, channel, spec.name, args);
          const frames = parseAll(bytes);
          expect(frames).toHaveLength(1);
          const [frame] = frames;
          expect(frame.type).toBe(FRAME_METHOD);
          expect(frame.channel).toBe(channel);
          expect(bytes[bytes.length - 1]).toBe(FRAME_END);
          expect(frame.payload.readUInt16BE(0)).toBe(spec.classId);
          expect(frame.payload.readUInt16BE(2)).toBe(spec.methodId);
          expect(frame.payload.length).toBe(expectedPayloadSize(spec, args));
          const decoded = decodeMethod(frame.payload);
          expect(decoded.name).toBe(spec.name);
          expect(decoded.classId).toBe(spec.classId);
          expect(decoded.methodId).toBe(spec.methodId);
          expect(decoded.args).toStrictEqual(normalizeArgs(spec, args));
        }),
        { numRuns: 40 },
      );
    });
  });

  describe('bit packing', () => {
    /** The payload of one encoded method frame. */
    const payloadOf = (name: string, args: Record<string, unknown>): Buffer => {
      const bytes = encode(encoder, 1, name, args);
      return bytes.subarray(7, bytes.length - 1);
    };

    it('packs queue.declare passive/durable/exclusive/autoDelete/noWait into one octet, bits 0..4', () => {
      const flags = ['passive', 'durable', 'exclusive', 'autoDelete', 'noWait'] as const;
      const base = { queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false };
      // class(2) method(2) reserved short(2) shortstr 'q'(2) → the bits octet is at 8, then the table.
      const none = payloadOf('queue.declare', { ...base, arguments: {} });
      expect(none.length).toBe(8 + 1 + 4);
      expect(none[8]).toBe(0);
      flags.forEach((flag, bit) => {
        const p = payloadOf('queue.declare', { ...base, [flag]: true, arguments: {} });
        expect(p.length).toBe(13);
        expect(p[8]).toBe(1 << bit);
        expect(decodeMethod(p).args).toEqual({ ...base, [flag]: true, arguments: {} });
      });
      const all = payloadOf('queue.declare', {
        queue: 'q',
        passive: true,
        durable: true,
        exclusive: true,
        autoDelete: true,
        noWait: true,
        arguments: {},
      });
      expect(all[8]).toBe(0b11111);
      expect(all.readUInt32BE(9)).toBe(0);
    });

    it('packs exchange.declare passive/durable/autoDelete/internal/noWait into bits 0..4', () => {
      const flags = ['passive', 'durable', 'autoDelete', 'internal', 'noWait'] as const;
      const base = { exchange: 'x', type: 'topic', passive: false, durable: false, autoDelete: false, internal: false };
      flags.forEach((flag, bit) => {
        const p = payloadOf('exchange.declare', { ...base, noWait: false, [flag]: true, arguments: {} });
        // class/method(4) reserved(2) 'x'(2) 'topic'(6) → bits at 14
        expect(p.length).toBe(14 + 1 + 4);
        expect(p[14]).toBe(1 << bit);
      });
    });

    it('packs basic.nack multiple = bit 0, requeue = bit 1 after the 64-bit delivery tag', () => {
      const p = (multiple: boolean, requeue: boolean): Buffer =>
        payloadOf('basic.nack', { deliveryTag: 2 ** 40 + 7, multiple, requeue });
      expect(p(false, false).length).toBe(4 + 8 + 1);
      expect(p(false, false)[12]).toBe(0);
      expect(p(true, false)[12]).toBe(1);
      expect(p(false, true)[12]).toBe(2);
      expect(p(true, true)[12]).toBe(3);
      expect(p(true, false).readUInt32BE(4)).toBe(2 ** 8);
      expect(p(true, false).readUInt32BE(8)).toBe(7);
    });

    it('packs basic.consume noLocal/noAck/exclusive/noWait into bits 0..3', () => {
      const flags = ['noLocal', 'noAck', 'exclusive', 'noWait'] as const;
      const base = { queue: '', consumerTag: '', noLocal: false, noAck: false, exclusive: false, noWait: false };
      flags.forEach((flag, bit) => {
        const p = payloadOf('basic.consume', { ...base, [flag]: true, arguments: {} });
        expect(p[8]).toBe(1 << bit);
      });
    });

    it('gives a bit that follows a non-bit field its own octet (basic.deliver redelivered)', () => {
      const p = payloadOf('basic.deliver', {
        consumerTag: 'c',
        deliveryTag: 1,
        redelivered: true,
        exchange: '',
        routingKey: '',
      });
      // class/method(4) 'c'(2) tag(8) → redelivered at 14, then two empty shortstrs
      expect(p.length).toBe(17);
      expect(p[14]).toBe(1);
    });

    it('ignores bits it does not know when decoding (reserved high bits set by a peer)', () => {
      const p = Buffer.from(payloadOf('basic.nack', { deliveryTag: 1, multiple: false, requeue: true }));
      p[12] |= 0xfc;
      expect(decodeMethod(p).args).toEqual({ deliveryTag: 1, multiple: false, requeue: true });
    });
  });

  describe('method ids', () => {
    const expected: Array<[string, number, number]> = [
      ['connection.blocked', 10, 60],
      ['connection.unblocked', 10, 61],
      ['connection.update-secret', 10, 70],
      ['connection.update-secret-ok', 10, 71],
      ['confirm.select', 85, 10],
      ['confirm.select-ok', 85, 11],
      ['basic.nack', 60, 120],
      ['exchange.bind', 40, 30],
      ['exchange.bind-ok', 40, 31],
      ['exchange.unbind', 40, 40],
      ['exchange.unbind-ok', 40, 51],
      ['connection.start', 10, 10],
      ['basic.deliver', 60, 60],
    ];

    it.each(expected)('%s is %i/%i', (name, classId, methodId) => {
      const id = (classId << 16) | methodId;
      expect(METHOD_IDS[name as MethodName]).toBe(id);
      const spec = METHODS_BY_ID.get(id);
      expect(spec).toBeDefined();
      expect(spec?.name).toBe(name);
      expect(spec?.classId).toBe(classId);
      expect(spec?.methodId).toBe(methodId);
      const args: Record<string, unknown> = {};
      for (const f of spec?.fields ?? []) {
        if (f.reserved) continue;
        args[f.name] = { bit: false, shortstr: '', longstr: '', table: {} }[f.type as string] ?? 0;
      }
      const payload = encode(encoder, 0, name, args).subarray(7);
      expect(payload.readUInt16BE(0)).toBe(classId);
      expect(payload.readUInt16BE(2)).toBe(methodId);
    });

    it('has the RabbitMQ extension fields', () => {
      const fields = (name: string): string[] =>
        (METHODS_BY_ID.get(METHOD_IDS[name as MethodName])?.fields ?? []).map((f) => `${f.name}:${f.type}`);
      expect(fields('connection.blocked')).toEqual(['reason:shortstr']);
      expect(fields('connection.unblocked')).toEqual([]);
      expect(fields('connection.update-secret')).toEqual(['newSecret:longstr', 'reason:shortstr']);
      expect(fields('connection.update-secret-ok')).toEqual([]);
      expect(fields('basic.nack')).toEqual(['deliveryTag:longlong', 'multiple:bit', 'requeue:bit']);
      expect(fields('confirm.select')).toEqual(['nowait:bit']);
    });

    it('keys METHODS_BY_ID by classId << 16 | methodId, one entry per method', () => {
      expect(METHODS_BY_ID.size).toBe(METHODS.length);
      for (const m of METHODS) {
        expect(m.id).toBe((m.classId << 16) | m.methodId);
        expect(METHODS_BY_ID.get(m.id)).toBe(m);
        expect(METHOD_IDS[m.name as MethodName]).toBe(m.id);
      }
    });
  });
});
