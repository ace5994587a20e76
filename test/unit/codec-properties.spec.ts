import fc from 'fast-check';
import { ProtocolError, ReplyCode } from '../../lib/amqp/errors';
import { AmqpDecimal, type FieldTable } from '../../lib/amqp/protocol/field-table';
import {
  decodeContentHeader,
  encodeContentHeader,
  PROPERTY_KEYS,
  type MessageProperties,
} from '../../lib/amqp/protocol/properties';
import { BASIC_PROPERTIES } from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';
import { normalizeTable, shortstr, tableArbitrary, type InputTable } from '../support/codec-arbitraries';

const MAX = Number.MAX_SAFE_INTEGER;

/** The flag of each property, written out by hand from the spec (bit 15 = contentType ... bit 2 = clusterId). */
const FLAGS: Array<[keyof MessageProperties, number]> = [
  ['contentType', 0x8000],
  ['contentEncoding', 0x4000],
  ['headers', 0x2000],
  ['deliveryMode', 0x1000],
  ['priority', 0x0800],
  ['correlationId', 0x0400],
  ['replyTo', 0x0200],
  ['expiration', 0x0100],
  ['messageId', 0x0080],
  ['timestamp', 0x0040],
  ['type', 0x0020],
  ['userId', 0x0010],
  ['appId', 0x0008],
  ['clusterId', 0x0004],
];

function encode(bodySize: number, props: MessageProperties | undefined): Buffer {
  const w = new Writer(64);
  encodeContentHeader(w, bodySize, props);
  return w.copyOut();
}

/** What decoding yields: headers normalized, timestamp truncated to whole seconds, absent keys absent. */
function expected(props: MessageProperties): MessageProperties {
  const out: MessageProperties = { ...props };
  if (props.headers !== undefined) out.headers = normalizeTable(props.headers as InputTable);
  if (props.timestamp !== undefined) out.timestamp = new Date(Math.floor(props.timestamp.getTime() / 1000) * 1000);
  return out;
}

const octet = fc.integer({ min: 0, max: 255 });
const propertiesArbitrary: fc.Arbitrary<MessageProperties> = fc.record(
  {
    contentType: shortstr(),
    contentEncoding: shortstr(),
    headers: tableArbitrary({ maxDepth: 2 }).map((t) => t as FieldTable),
    deliveryMode: octet,
    priority: octet,
    correlationId: shortstr(),
    replyTo: shortstr(),
    expiration: shortstr(),
    messageId: shortstr(),
    timestamp: fc.date({ noInvalidDate: true }),
    type: shortstr(),
    userId: shortstr(),
    appId: shortstr(),
    clusterId: shortstr(),
  },
  { requiredKeys: [] },
);

const bodySizeArbitrary = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.integer({ min: 2 ** 32, max: MAX }),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 5e9, MAX),
);

describe('content header codec', () => {
  it('round-trips any combination of the 14 properties and any 53-bit body size', () => {
    fc.assert(
      fc.property(bodySizeArbitrary, propertiesArbitrary, (bodySize, props) => {
        const payload = encode(bodySize, props);
        expect(payload.readUInt16BE(0)).toBe(60);
        expect(payload.readUInt16BE(2)).toBe(0);
        let flags = 0;
        for (const [key, flag] of FLAGS) if (props[key] !== undefined) flags |= flag;
        expect(payload.readUInt16BE(12)).toBe(flags);
        const h = decodeContentHeader(payload, MAX);
        expect(h.classId).toBe(60);
        expect(h.bodySize).toBe(bodySize);
        expect(h.properties.toJSON()).toStrictEqual(expected(props));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips all 2^14 presence masks exactly (fixed values)', () => {
    const values: Required<MessageProperties> = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: { a: 1, 'x-death': [{ count: 2n ** 60n, reason: 'expired' }], d: new AmqpDecimal(2, -5) },
      deliveryMode: 2,
      priority: 255,
      correlationId: 'corr-é',
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'm'.repeat(255),
      timestamp: new Date(1_700_000_000_000),
      type: 't',
      userId: 'guest',
      appId: 'app',
      clusterId: '',
    };
    const w = new Writer(1024);
    for (let mask = 0; mask < 1 << 14; mask++) {
      const props: MessageProperties = {};
      let flags = 0;
      FLAGS.forEach(([key, flag], i) => {
        if (mask & (1 << i)) {
          (props as Record<string, unknown>)[key] = values[key];
          flags |= flag;
        }
      });
      const bodySize = mask * 1_000_003;
      encodeContentHeader(w.reset(), bodySize, props);
      const payload = w.buf.subarray(0, w.pos);
      if (payload.readUInt16BE(12) !== flags) throw new Error(`mask ${mask}: flags ${payload.readUInt16BE(12)}`);
      const h = decodeContentHeader(payload, MAX);
      if (h.bodySize !== bodySize) throw new Error(`mask ${mask}: bodySize ${h.bodySize}`);
      const p = h.properties;
      FLAGS.forEach(([key], i) => {
        const want = mask & (1 << i) ? values[key] : undefined;
        if (key === 'headers' || key === 'timestamp') {
          if ((p[key] === undefined) !== (want === undefined)) throw new Error(`mask ${mask}: ${key} presence`);
        } else if (p[key] !== want) throw new Error(`mask ${mask}: ${key} = ${String(p[key])}, want ${String(want)}`);
      });
      if (p.timestamp !== undefined && p.timestamp.getTime() !== values.timestamp.getTime()) {
        throw new Error(`mask ${mask}: timestamp ${p.timestamp.toISOString()}`);
      }
      // A deep comparison of the headers on a sample of the masks keeps the loop fast; the others
      // check a value on each side of the table.
      if (mask & (1 << 2)) {
        if ((mask & 0xff) === 0xff) expect(p.headers).toStrictEqual(values.headers);
        else if (p.headers?.a !== 1 || !(p.headers.d instanceof AmqpDecimal)) throw new Error(`mask ${mask}: headers`);
      }
    }
  });

  it('turns the timestamp into a Date only when read, once, and lets it be replaced', () => {
    const p = decodeContentHeader(encode(3, { timestamp: new Date(1_700_000_000_500) }), MAX).properties;
    const first = p.timestamp;
    expect(first).toEqual(new Date(1_700_000_000_000)); // whole seconds on the wire
    expect(p.timestamp).toBe(first); // decoded once, then kept
    expect(p.toJSON().timestamp).toBe(first);
    const later = new Date(0);
    p.timestamp = later;
    expect(p.timestamp).toBe(later);
    expect(decodeContentHeader(encode(3, {}), MAX).properties.timestamp).toBeUndefined();
  });

  it('encodes no properties as a zero flags word, also for `undefined` and null-valued properties', () => {
    expect(encode(3, undefined).readUInt16BE(12)).toBe(0);
    expect(encode(3, {}).readUInt16BE(12)).toBe(0);
    expect(encode(3, { contentType: undefined, headers: undefined }).length).toBe(14);
    expect(decodeContentHeader(encode(3, undefined), MAX).properties.toJSON()).toEqual({});
  });

  it('sets exactly one flag per property, contentType = 0x8000 … clusterId = 0x0004', () => {
    const one: Required<MessageProperties> = {
      contentType: 'a',
      contentEncoding: 'b',
      headers: {},
      deliveryMode: 1,
      priority: 0,
      correlationId: 'c',
      replyTo: 'd',
      expiration: 'e',
      messageId: 'f',
      timestamp: new Date(0),
      type: 'g',
      userId: 'h',
      appId: 'i',
      clusterId: 'j',
    };
    for (const [key, flag] of FLAGS) {
      const payload = encode(0, { [key]: one[key] });
      expect(payload.readUInt16BE(12)).toBe(flag);
    }
    // The generated table and the decoder's key order agree with the spec.
    expect(BASIC_PROPERTIES.map((p) => [p.name, p.flag])).toEqual(FLAGS);
    expect(PROPERTY_KEYS).toEqual(FLAGS.map(([k]) => k));
  });

  it('writes the body size as a 64-bit big-endian integer (values above 2^32)', () => {
    const payload = encode(5e9, undefined);
    expect(payload.readUInt32BE(4)).toBe(1);
    expect(payload.readUInt32BE(8)).toBe(5e9 - 2 ** 32);
    expect(payload.readBigUInt64BE(4)).toBe(5_000_000_000n);
    expect(decodeContentHeader(payload, 6e9).bodySize).toBe(5e9);
    expect(decodeContentHeader(encode(2 ** 53 - 1, {}), MAX).bodySize).toBe(2 ** 53 - 1);
  });

  it('accepts a body size equal to the max and refuses one above it with a 501 ProtocolError', () => {
    expect(decodeContentHeader(encode(1000, {}), 1000).bodySize).toBe(1000);
    const fail = (): unknown => decodeContentHeader(encode(1001, {}), 1000);
    expect(fail).toThrow(ProtocolError);
    expect(fail).toThrow(/exceeds the limit of 1000/);
    try {
      fail();
    } catch (err) {
      expect(err instanceof ProtocolError && err.replyCode).toBe(ReplyCode.FRAME_ERROR);
    }
    // 2^64 - 1 announced: refused, not wrapped into something small.
    const huge = Buffer.from(encode(0, {}));
    huge.writeBigUInt64BE(2n ** 64n - 1n, 4);
    expect(() => decodeContentHeader(huge, 128 * 1024 * 1024)).toThrow(ProtocolError);
    // 5e9 with a max of 4e9: a 32-bit reading of the size would have let it through.
    expect(() => decodeContentHeader(encode(5e9, {}), 4e9)).toThrow(ProtocolError);
  });

  describe('lazy headers', () => {
    const headers: FieldTable = { 'x-match': 'all', n: 1, nested: { list: [1, 'two', null, true] } };
    const payload = encode(10, { contentType: 'text/plain', headers, priority: 3 });

    it('keeps headers raw until `headers` is first read, then decodes them once', () => {
      const { properties: p } = decodeContentHeader(payload, MAX);
      expect(p.headersDecoded).toBe(false);
      expect(p.contentType).toBe('text/plain');
      expect(p.priority).toBe(3);
      expect(p.headersDecoded).toBe(false);
      const first = p.headers;
      expect(p.headersDecoded).toBe(true);
      expect(first).toStrictEqual(headers);
      expect(p.headers).toBe(first);
    });

    it('reports headersDecoded for properties without headers', () => {
      const { properties: p } = decodeContentHeader(encode(0, { contentType: 'a' }), MAX);
      expect(p.headers).toBeUndefined();
      expect(p.headersDecoded).toBe(true);
    });

    it('decodes lazily from a copy-free view: the raw header bytes are read from the frame payload', () => {
      const copy = Buffer.from(payload);
      const { properties: p } = decodeContentHeader(copy, MAX);
      // Corrupting the payload after decodeContentHeader but before the first read is visible:
      // proof that the table was not decoded eagerly.
      const at = copy.indexOf('x-match');
      copy.write('y', at);
      expect(p.headers?.['y-match']).toBe('all');
    });

    it('a setter replaces raw headers without decoding them', () => {
      const { properties: p } = decodeContentHeader(payload, MAX);
      p.headers = { replaced: true };
      expect(p.headersDecoded).toBe(true);
      expect(p.headers).toEqual({ replaced: true });
    });

    it('malformed headers throw a ProtocolError on every read, never turn into `undefined`', () => {
      const bad = Buffer.from(payload);
      // The first value's type tag: after class/weight/size/flags (14), contentType (1 + 10), table length (4),
      // key length (1) and 'x-match' (7).
      const tagAt = 14 + 11 + 4 + 1 + 7;
      expect(String.fromCharCode(bad[tagAt])).toBe('S');
      bad[tagAt] = 0x3f; // '?': unknown tag
      const { properties: p } = decodeContentHeader(bad, MAX);
      expect(p.contentType).toBe('text/plain');
      expect(() => p.headers).toThrow(ProtocolError);
      expect(() => p.headers).toThrow(ProtocolError);
      expect(p.headersDecoded).toBe(false);
    });
  });

  it('refuses a header table whose length runs past the frame (502) and the flags continuation bit', () => {
    const p = Buffer.from(encode(0, { headers: { a: 1 } }));
    p.writeUInt32BE(1000, 14);
    expect(() => decodeContentHeader(p, MAX)).toThrow(expect.objectContaining({ replyCode: ReplyCode.SYNTAX_ERROR }));
    const cont = Buffer.from(encode(0, {}));
    cont.writeUInt16BE(0x0001, 12);
    expect(() => decodeContentHeader(cont, MAX)).toThrow(ProtocolError);
  });
});
