import fc from 'fast-check';
import { ProtocolError, ReplyCode } from '../../lib/amqp/errors';
import { ContentAssembler } from '../../lib/amqp/protocol/content-assembler';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FrameParser,
  viewSink,
} from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder, HEARTBEAT_FRAME } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod, type DecodedMethod } from '../../lib/amqp/protocol/methods';
import { decodeContentHeader, encodeContentHeader, type MessageProperties } from '../../lib/amqp/protocol/properties';
import { Reader } from '../../lib/amqp/protocol/reader';
import { METHODS, METHODS_BY_ID, type MethodArgs, type MethodName } from '../../lib/amqp/protocol/spec.generated';
import { Writer } from '../../lib/amqp/protocol/writer';
import { methodArgsArbitrary, shortstr, tableArbitrary } from '../support/codec-arbitraries';

const FRAME_MAX = 131072;
const MAX_BODY = 1024 * 1024;
/** FUZZ_RUNS=20 multiplies the fuzz runs (for a long local session); CI keeps the default. */
const FUZZ = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1));
const PROTOCOL_CODES = [
  ReplyCode.FRAME_ERROR,
  ReplyCode.SYNTAX_ERROR,
  ReplyCode.COMMAND_INVALID,
  ReplyCode.UNEXPECTED_FRAME,
];

const encoder = new FrameEncoder(0);

function frame(type: number, channel: number, payload: Buffer | Uint8Array): Buffer {
  const out = Buffer.alloc(payload.length + 8);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  out.set(payload, 7);
  out[out.length - 1] = FRAME_END;
  return out;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function methodPayload(name: string, args: Record<string, unknown>): Buffer {
  const f = encoder.method(0, name as MethodName, args as unknown as MethodArgs[MethodName]);
  return f.subarray(7, f.length - 1);
}
function headerPayload(bodySize: number, props?: MessageProperties): Buffer {
  const w = new Writer(64);
  encodeContentHeader(w, bodySize, props);
  return w.copyOut();
}

/** The ProtocolError `fn` throws (anything else fails the test). */
function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** A field table `depth` levels deep ({k: {k: ...}}), as raw bytes with its length prefix. */
function deepTable(depth: number): Buffer {
  let t = u32(0);
  for (let i = 1; i < depth; i++) {
    const entry = Buffer.concat([Buffer.from([1]), Buffer.from('kF'), t]);
    t = Buffer.concat([u32(entry.length), entry]);
  }
  return t;
}
/** A table holding an array nested `depth` levels deep ({k: [[[...]]]}). */
function deepArray(depth: number): Buffer {
  let a = u32(0);
  for (let i = 1; i < depth; i++) a = Buffer.concat([u32(a.length + 1), Buffer.from('A'), a]);
  const entry = Buffer.concat([Buffer.from([1]), Buffer.from('kA'), a]);
  return Buffer.concat([u32(entry.length), entry]);
}
/** connection.start carrying `serverProperties` as given. */
function connectionStart(serverProperties: Buffer): Buffer {
  return Buffer.concat([u16(10), u16(10), Buffer.from([0, 9]), serverProperties, u32(5), Buffer.from('PLAIN'), u32(0)]);
}

describe('hostile input', () => {
  afterEach(() => jest.restoreAllMocks());

  describe('frames', () => {
    const bigSizes = [FRAME_MAX - 7, 2 ** 31, 2 ** 32 - 1];

    it.each(bigSizes)(
      'refuses a frame announcing %i payload bytes (frameMax %#) with 501, before allocating it',
      (size) => {
        const spies = [
          jest.spyOn(Buffer, 'allocUnsafe'),
          jest.spyOn(Buffer, 'alloc'),
          jest.spyOn(Buffer, 'allocUnsafeSlow'),
        ];
        const head = Buffer.from([FRAME_BODY, 0, 1, 0, 0, 0, 0, 1, 2, 3]);
        head.writeUInt32BE(size, 3);
        // Whole header in one chunk...
        const err = protocolError(() =>
          new FrameParser(
            viewSink(() => undefined),
            FRAME_MAX,
          ).push(head),
        );
        expect(err.replyCode).toBe(ReplyCode.FRAME_ERROR);
        expect(err.message).toMatch(/frame_max/);
        // ...and split across chunks (the header-assembly path).
        const parser = new FrameParser(
          viewSink(() => undefined),
          FRAME_MAX,
        );
        parser.push(head.subarray(0, 3));
        parser.push(head.subarray(3, 6));
        expect(protocolError(() => parser.push(head.subarray(6))).replyCode).toBe(ReplyCode.FRAME_ERROR);
        for (const spy of spies) for (const [n] of spy.mock.calls) expect(n).toBeLessThan(FRAME_MAX);
      },
    );

    it('accepts a frame of exactly frameMax bytes', () => {
      const seen: number[] = [];
      const parser = new FrameParser(
        viewSink((_t, _c, p) => seen.push(p.length)),
        FRAME_MAX,
      );
      const f = frame(FRAME_BODY, 1, Buffer.alloc(FRAME_MAX - 8));
      parser.push(f.subarray(0, 100));
      parser.push(f.subarray(100));
      expect(seen).toEqual([FRAME_MAX - 8]);
    });

    it('refuses a bad frame-end octet with 501, inside one chunk and across chunks', () => {
      const f = Buffer.from(frame(FRAME_METHOD, 1, methodPayload('basic.ack', { deliveryTag: 1, multiple: false })));
      f[f.length - 1] = 0xcd;
      const inChunk = Buffer.concat([f, HEARTBEAT_FRAME]);
      expect(
        protocolError(() =>
          new FrameParser(
            viewSink(() => undefined),
            FRAME_MAX,
          ).push(inChunk),
        ).replyCode,
      ).toBe(501);
      const parser = new FrameParser(
        viewSink(() => undefined),
        FRAME_MAX,
      );
      parser.push(f.subarray(0, 10));
      expect(protocolError(() => parser.push(f.subarray(10))).replyCode).toBe(501);
      // A frame ending exactly at the chunk boundary is checked too.
      expect(
        protocolError(() =>
          new FrameParser(
            viewSink(() => undefined),
            FRAME_MAX,
          ).push(f),
        ).message,
      ).toMatch(/frame-end/);
    });

    it.each([0, 4, 5, 9, 0x41, 0xff])('refuses unknown frame type %i with 501', (type) => {
      const f = frame(type, 0, Buffer.alloc(4));
      const err = protocolError(() =>
        new FrameParser(
          viewSink(() => undefined),
          FRAME_MAX,
        ).push(f),
      );
      expect(err.replyCode).toBe(ReplyCode.FRAME_ERROR);
      expect(err.message).toMatch(/frame type/);
    });

    it('stays failed: every later push rethrows the first error and the sink sees nothing more', () => {
      const sink = jest.fn();
      const parser = new FrameParser(viewSink(sink), FRAME_MAX);
      const first = protocolError(() => parser.push(frame(7, 0, Buffer.alloc(0))));
      expect(protocolError(() => parser.push(HEARTBEAT_FRAME))).toBe(first);
      expect(sink).not.toHaveBeenCalled();
    });
  });

  describe('methods', () => {
    it('refuses unknown classes and methods with 503', () => {
      for (const [c, m] of [
        [0, 0],
        [30, 10], // access.request: not spoken by RabbitMQ 3+
        [60, 999],
        [85, 20],
        [0xffff, 0xffff],
      ]) {
        const err = protocolError(() => decodeMethod(Buffer.concat([u16(c), u16(m), Buffer.alloc(16)])));
        expect(err.replyCode).toBe(ReplyCode.COMMAND_INVALID);
      }
    });

    it('refuses a method frame too short for its ids', () => {
      for (const n of [0, 1, 3]) expect(protocolError(() => decodeMethod(Buffer.alloc(n))).replyCode).toBe(501);
    });

    it('refuses every truncation of every method with 502', () => {
      for (const spec of METHODS) {
        const [args] = fc.sample(methodArgsArbitrary(spec), { numRuns: 1, seed: spec.id });
        const payload = methodPayload(spec.name, args);
        expect(() => decodeMethod(payload)).not.toThrow();
        for (let n = 4; n < payload.length; n++) {
          const err = protocolError(() => decodeMethod(payload.subarray(0, n)));
          expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR);
        }
      }
    });

    it('refuses lengths that lie (longer than the frame) with 502', () => {
      const lies: Buffer[] = [
        // basic.consume-ok: short string claims 200 bytes, 3 present
        Buffer.concat([u16(60), u16(21), Buffer.from([200]), Buffer.from('abc')]),
        // connection.start: table claims 4 GiB
        connectionStart(u32(0xffffffff)),
        // connection.start: a long string claims 4 GiB
        Buffer.concat([u16(10), u16(10), Buffer.from([0, 9]), u32(0), u32(0xfffffff0), Buffer.from('PLAIN')]),
        // connection.start: a nested table claims more than its parent holds, though the frame has the bytes
        Buffer.concat([
          u16(10),
          u16(10),
          Buffer.from([0, 9]),
          u32(7),
          Buffer.from([1]),
          Buffer.from('kF'),
          u32(20),
          u32(30),
          Buffer.alloc(30, 0x41),
          u32(0),
        ]),
        // a nested table running past its parent into bytes that would parse as a table body
        // ({a: void}) followed by a well-formed rest of the method: only the parent's bound stops it
        Buffer.concat([
          u16(10),
          u16(10),
          Buffer.from([0, 9]),
          u32(7),
          Buffer.from([1]),
          Buffer.from('kF'),
          u32(3),
          Buffer.from([1]),
          Buffer.from('aV'),
          u32(5),
          Buffer.from('PLAIN'),
          u32(0),
        ]),
        // the same with an array ([void]) and with a key
        Buffer.concat([
          u16(10),
          u16(10),
          Buffer.from([0, 9]),
          u32(7),
          Buffer.from([1]),
          Buffer.from('kA'),
          u32(1),
          Buffer.from('V'),
          u32(5),
          Buffer.from('PLAIN'),
          u32(0),
        ]),
        // an array claiming more than its table holds
        connectionStart(Buffer.concat([u32(8), Buffer.from([1]), Buffer.from('kA'), u32(100), Buffer.from('V')])),
        // a string value inside a table claiming more than the table holds
        connectionStart(Buffer.concat([u32(8), Buffer.from([1]), Buffer.from('kS'), u32(1000), Buffer.from('x')])),
        // a key claiming more than the table holds
        connectionStart(Buffer.concat([u32(3), Buffer.from([50]), Buffer.from('ab')])),
        // a value tag with its bytes cut off by the table end
        connectionStart(Buffer.concat([u32(4), Buffer.from([1]), Buffer.from('kl'), Buffer.from([0])])),
        // basic.deliver: delivery tag beyond 2^53
        Buffer.concat([
          u16(60),
          u16(60),
          Buffer.from([0]),
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
          Buffer.alloc(3),
        ]),
      ];
      for (const payload of lies)
        expect(protocolError(() => decodeMethod(payload)).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
    });

    it('refuses tables and arrays nested 1000 deep with a ProtocolError, not a RangeError', () => {
      for (const bytes of [deepTable(1000), deepArray(1000), deepTable(65), deepArray(65)]) {
        expect(protocolError(() => new Reader(bytes).table()).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
        expect(protocolError(() => decodeMethod(connectionStart(bytes))).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
        const props = headerPayload(0);
        props.writeUInt16BE(0x2000, 12);
        const { properties } = decodeContentHeader(Buffer.concat([props, bytes]), MAX_BODY);
        expect(protocolError(() => properties.headers).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
      }
    });

    it('still accepts legitimate nesting, also after many refused ones (no leaked depth)', () => {
      const tooDeep = connectionStart(deepTable(1000));
      for (let i = 0; i < 100; i++) protocolError(() => decodeMethod(tooDeep));
      const ok = decodeMethod(connectionStart(deepTable(60)));
      expect(ok.name).toBe('connection.start');
      expect(() => new Reader(deepArray(60)).table()).not.toThrow();
    });
  });

  describe('content', () => {
    const deliver = decodeMethod(
      methodPayload('basic.deliver', {
        consumerTag: 'c',
        deliveryTag: 1,
        redelivered: false,
        exchange: '',
        routingKey: '',
      }),
    );

    it('skips a body over the limit without allocating it, and reports its announced size', () => {
      const p = headerPayload(0);
      p.writeBigUInt64BE(2n ** 62n, 4);
      const q = headerPayload(MAX_BODY + 1);
      const [chunk, last] = [Buffer.alloc(MAX_BODY), Buffer.alloc(1)];
      const spy = jest.spyOn(Buffer, 'allocUnsafe');
      const huge = new ContentAssembler<DecodedMethod>(MAX_BODY);
      huge.start(deliver);
      expect(huge.header(p)).toBeNull();
      expect(huge.bodyFrame(last)).toBeNull();
      const asm = new ContentAssembler<DecodedMethod>(MAX_BODY);
      asm.start(deliver);
      expect(asm.header(q)).toBeNull();
      expect(asm.bodyFrame(chunk)).toBeNull();
      const done = asm.bodyFrame(last);
      expect(done?.skippedSize).toBe(MAX_BODY + 1);
      expect(done?.body.length).toBe(0);
      expect(spy).not.toHaveBeenCalled();
      spy.mockRestore();
      // The decoder alone still refuses it (its callers that do not skip).
      expect(protocolError(() => decodeContentHeader(headerPayload(MAX_BODY + 1), MAX_BODY)).message).toMatch(
        /exceeds the limit/,
      );
      // A skipped body is still held to its announced size.
      const over = new ContentAssembler<DecodedMethod>(MAX_BODY);
      over.start(deliver);
      over.header(headerPayload(MAX_BODY + 1));
      expect(protocolError(() => over.bodyFrame(Buffer.alloc(MAX_BODY + 2))).replyCode).toBe(ReplyCode.FRAME_ERROR);
    });

    it('grows a large body as its bytes arrive instead of allocating the announced size up front', () => {
      const announced = 100 * 1024 * 1024;
      const header = headerPayload(announced);
      const frame = Buffer.alloc(1000, 7);
      const spy = jest.spyOn(Buffer, 'allocUnsafe');
      const asm = new ContentAssembler<DecodedMethod>(128 * 1024 * 1024);
      asm.start(deliver);
      asm.header(header);
      for (let i = 0; i < 10; i++) expect(asm.bodyFrame(frame)).toBeNull();
      const sizes = spy.mock.calls.map(([n]) => n);
      spy.mockRestore();
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024);
    });

    it('assembles a large body sent in many frames intact', () => {
      const body = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
      const asm = new ContentAssembler<DecodedMethod>(8 * 1024 * 1024);
      asm.start(deliver);
      asm.header(headerPayload(body.length));
      let done = null;
      for (let off = 0; off < body.length; off += 131064) {
        done = asm.bodyFrame(body.subarray(off, Math.min(off + 131064, body.length)));
      }
      expect(done?.skippedSize).toBe(0);
      expect(done?.body.equals(body)).toBe(true);
    });

    it('refuses body frames that exceed the announced size', () => {
      const asm = new ContentAssembler<DecodedMethod>(MAX_BODY);
      asm.start(deliver);
      expect(asm.header(headerPayload(10))).toBeNull();
      expect(asm.bodyFrame(Buffer.alloc(6))).toBeNull();
      expect(protocolError(() => asm.bodyFrame(Buffer.alloc(6))).replyCode).toBe(ReplyCode.FRAME_ERROR);
      const single = new ContentAssembler<DecodedMethod>(MAX_BODY);
      single.start(deliver);
      single.header(headerPayload(10));
      expect(() => single.bodyFrame(Buffer.alloc(11))).toThrow(ProtocolError);
    });

    it('refuses frames out of order with 505 UNEXPECTED_FRAME', () => {
      const bodyOnly = new ContentAssembler<DecodedMethod>(MAX_BODY);
      expect(protocolError(() => bodyOnly.bodyFrame(Buffer.alloc(1))).replyCode).toBe(ReplyCode.UNEXPECTED_FRAME);
      const headerOnly = new ContentAssembler<DecodedMethod>(MAX_BODY);
      expect(protocolError(() => headerOnly.header(headerPayload(1))).replyCode).toBe(ReplyCode.UNEXPECTED_FRAME);
      const bodyBeforeHeader = new ContentAssembler<DecodedMethod>(MAX_BODY);
      bodyBeforeHeader.start(deliver);
      expect(protocolError(() => bodyBeforeHeader.bodyFrame(Buffer.alloc(1))).replyCode).toBe(505);
      const twoMethods = new ContentAssembler<DecodedMethod>(MAX_BODY);
      twoMethods.start(deliver);
      expect(protocolError(() => twoMethods.start(deliver)).replyCode).toBe(505);
      const twoHeaders = new ContentAssembler<DecodedMethod>(MAX_BODY);
      twoHeaders.start(deliver);
      twoHeaders.header(headerPayload(5));
      expect(protocolError(() => twoHeaders.header(headerPayload(5))).replyCode).toBe(505);
      // After a finished message, a stray body frame is unexpected again.
      const done = new ContentAssembler<DecodedMethod>(MAX_BODY);
      done.start(deliver);
      done.header(headerPayload(2));
      expect(done.bodyFrame(Buffer.from('ok'))?.body.toString()).toBe('ok');
      expect(protocolError(() => done.bodyFrame(Buffer.alloc(1))).replyCode).toBe(505);
    });

    it('refuses truncated content headers with 502', () => {
      const full = headerPayload(3, { contentType: 'a', headers: { k: 'v' }, timestamp: new Date(0), appId: 'x' });
      for (let n = 0; n < full.length; n++) {
        const err = protocolError(() => decodeContentHeader(full.subarray(0, n), MAX_BODY));
        expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR);
      }
    });
  });

  describe('fuzz', () => {
    /**
     * Drive everything a connection would: the frame parser, then per channel decodeMethod, a
     * ContentAssembler, and the lazy headers of every finished message. Only ProtocolErrors with a
     * protocol reply code may come out; anything else is rethrown and fails the property.
     */
    function consume(chunks: Buffer[]): void {
      const assemblers = new Map<number, ContentAssembler<DecodedMethod>>();
      const check = (err: unknown): void => {
        if (!(err instanceof ProtocolError)) throw err;
        if (!PROTOCOL_CODES.includes(err.replyCode as (typeof PROTOCOL_CODES)[number])) throw err;
      };
      const parser = new FrameParser(
        viewSink((type, channel, payload) => {
          let asm = assemblers.get(channel);
          if (!asm) assemblers.set(channel, (asm = new ContentAssembler<DecodedMethod>(MAX_BODY)));
          try {
            let done = null;
            if (type === FRAME_METHOD) {
              const m = decodeMethod(payload);
              if (METHODS_BY_ID.get((m.classId << 16) | m.methodId)?.hasContent) asm.start(m);
            } else if (type === FRAME_HEADER) {
              // Also decode every header on its own, whatever the assembler thinks of it.
              const h = decodeContentHeader(payload, MAX_BODY);
              void h.properties.toJSON();
              done = asm.header(payload);
            } else if (type === FRAME_BODY) done = asm.bodyFrame(payload);
            if (done) {
              void done.properties.headers;
              void done.properties.toJSON();
            }
          } catch (err) {
            check(err);
            asm.reset();
          }
        }),
        FRAME_MAX,
      );
      for (const chunk of chunks) {
        try {
          parser.push(chunk);
        } catch (err) {
          check(err);
          return;
        }
      }
    }

    /** Payload-level decoders fed directly (random bytes rarely survive framing). */
    function decodeDirectly(bytes: Buffer): void {
      const attempts: Array<() => unknown> = [
        () => decodeMethod(bytes),
        () => decodeContentHeader(bytes, MAX_BODY).properties.toJSON(),
        () => new Reader(bytes).table(),
        () => decodeMethod(Buffer.concat([u16(10), u16(10), bytes])),
      ];
      for (const attempt of attempts) {
        try {
          attempt();
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }
    }

    const channel = fc.integer({ min: 0, max: 3 });
    const table = tableArbitrary({ maxDepth: 2 });
    const contentMethods = METHODS.filter((m) => m.hasContent && m.name !== 'basic.publish');

    /** A content-bearing method, its header and its body split over frames. */
    const message: fc.Arbitrary<Buffer[]> = fc
      .record({
        channel,
        method: fc.constantFrom(...contentMethods),
        seed: fc.nat(),
        props: fc.record(
          {
            contentType: shortstr(),
            headers: table,
            deliveryMode: fc.integer({ min: 1, max: 2 }),
            messageId: shortstr(),
          },
          { requiredKeys: [] },
        ),
        body: fc.uint8Array({ maxLength: 400 }),
        frameBody: fc.integer({ min: 1, max: 200 }),
      })
      .map(({ channel: ch, method, seed, props, body, frameBody }) => {
        const [args] = fc.sample(methodArgsArbitrary(method, table), { numRuns: 1, seed });
        const parts = [
          encoder.method(ch, method.name as MethodName, args as unknown as MethodArgs[MethodName]),
          frame(FRAME_HEADER, ch, headerPayload(body.length, props as MessageProperties)),
        ];
        for (let off = 0; off < body.length; off += frameBody) {
          parts.push(frame(FRAME_BODY, ch, body.subarray(off, off + frameBody)));
        }
        return parts;
      });
    const anyMethod: fc.Arbitrary<Buffer[]> = fc
      .tuple(channel, fc.constantFrom(...METHODS.filter((m) => !m.hasContent)), fc.nat())
      .map(([ch, spec, seed]) => {
        const [args] = fc.sample(methodArgsArbitrary(spec, table), { numRuns: 1, seed });
        return [encoder.method(ch, spec.name as MethodName, args as unknown as MethodArgs[MethodName])];
      });
    const stream: fc.Arbitrary<Buffer> = fc
      .array(fc.oneof(message, anyMethod, fc.constant([HEARTBEAT_FRAME])), { minLength: 1, maxLength: 6 })
      .map((groups) => Buffer.concat(groups.flat()));

    type Mutation =
      | { kind: 'flip'; at: number; value: number }
      | { kind: 'truncate'; at: number }
      | { kind: 'insert'; at: number; bytes: Uint8Array }
      | { kind: 'delete'; at: number; n: number };
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('insert' as const),
          at: fc.nat(),
          bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 9 }) }),
      },
    );
    function mutate(bytes: Buffer, mutations: Mutation[]): Buffer {
      let b = Buffer.from(bytes);
      for (const m of mutations) {
        const at = b.length === 0 ? 0 : m.at % b.length;
        if (m.kind === 'flip' && b.length > 0) b[at] = m.value;
        else if (m.kind === 'truncate') b = b.subarray(0, at);
        else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
      }
      return b;
    }
    function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const out: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, bytes.length]) {
        out.push(bytes.subarray(prev, p));
        prev = p;
      }
      return out;
    }

    it('unmutated streams decode without any error', () => {
      fc.assert(
        fc.property(stream, (bytes) => {
          const errors: unknown[] = [];
          const asm = new Map<number, ContentAssembler<DecodedMethod>>();
          new FrameParser(
            viewSink((type, ch, payload) => {
              try {
                let a = asm.get(ch);
                if (!a) asm.set(ch, (a = new ContentAssembler<DecodedMethod>(MAX_BODY)));
                if (type === FRAME_METHOD) {
                  const m = decodeMethod(payload);
                  if (METHODS_BY_ID.get((m.classId << 16) | m.methodId)?.hasContent) a.start(m);
                } else if (type === FRAME_HEADER) void a.header(payload)?.properties.headers;
                else if (type === FRAME_BODY) void a.bodyFrame(payload)?.properties.headers;
              } catch (err) {
                errors.push(err);
              }
            }),
            FRAME_MAX,
          ).push(bytes);
          expect(errors).toEqual([]);
        }),
        { numRuns: 100 },
      );
    });

    it('mutated frame streams only ever yield frames or ProtocolErrors', () => {
      fc.assert(
        fc.property(
          stream,
          fc.array(mutation, { minLength: 1, maxLength: 5 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          (bytes, mutations, cuts) => {
            consume(chunked(mutate(bytes, mutations), cuts));
          },
        ),
        { numRuns: 1200 * FUZZ },
      );
    });

    it('random bytes, raw and inside valid framing, only ever yield frames or ProtocolErrors', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
          fc.constantFrom(FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT),
          fc.array(fc.nat(), { maxLength: 4 }),
          (bytes, type, cuts) => {
            consume(chunked(bytes, cuts));
            consume([frame(type, 1, bytes)]);
            // A content header followed by random bytes as its table and properties.
            consume([
              frame(
                FRAME_METHOD,
                1,
                methodPayload('basic.get-ok', {
                  deliveryTag: 1,
                  redelivered: false,
                  exchange: '',
                  routingKey: '',
                  messageCount: 0,
                }),
              ),
              frame(FRAME_HEADER, 1, Buffer.concat([headerPayload(1).subarray(0, 12), bytes])),
              frame(FRAME_BODY, 1, Buffer.from('b')),
            ]);
            decodeDirectly(bytes);
          },
        ),
        { numRuns: 800 * FUZZ },
      );
    });

    it('random method payloads with valid ids only ever decode or throw ProtocolErrors', () => {
      fc.assert(
        fc.property(fc.constantFrom(...METHODS), fc.uint8Array({ maxLength: 120 }), (spec, rest) => {
          try {
            decodeMethod(Buffer.concat([u16(spec.classId), u16(spec.methodId), rest]));
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            expect(err.replyCode).toBe(ReplyCode.SYNTAX_ERROR);
          }
        }),
        { numRuns: 500 * FUZZ },
      );
    });
  });
});
