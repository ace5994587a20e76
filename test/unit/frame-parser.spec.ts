import fc from 'fast-check';
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
import { encodeContentHeader } from '../../lib/amqp/protocol/properties';
import { Writer } from '../../lib/amqp/protocol/writer';

interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

const FRAME_MAX = 131072;

function frame(type: number, channel: number, payload: Buffer | Uint8Array): Buffer {
  const out = Buffer.alloc(payload.length + 8);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  out.set(payload, 7);
  out[out.length - 1] = FRAME_END;
  return out;
}

/** A parser that records (type, channel, copy of payload) for every frame. */
function recorder(frameMax = FRAME_MAX): { parser: FrameParser; frames: Frame[] } {
  const frames: Frame[] = [];
  const parser = new FrameParser(
    viewSink((type, channel, payload) => {
      frames.push({ type, channel, payload: Buffer.from(payload) });
    }),
    frameMax,
  );
  return { parser, frames };
}

/** A cheap, exact fingerprint of a frame list (jest's deep equality on Buffers is slow). */
function summary(frames: Frame[]): string[] {
  return frames.map((f) => `${f.type}/${f.channel}/${f.payload.toString('hex')}`);
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(prev, p));
    prev = p;
  }
  return chunks;
}

const encoder = new FrameEncoder(0);
const headerWriter = new Writer(256);

/** Random realistic frames: method frames, content headers, bodies and heartbeats on random channels. */
const frameArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.string({ maxLength: 30 }), fc.nat()).map(([ch, tag, n]) =>
    encoder.method(ch, 'basic.deliver', {
      consumerTag: tag,
      deliveryTag: n,
      redelivered: false,
      exchange: 'ex',
      routingKey: tag,
    }),
  ),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.nat({ max: 2 ** 40 }), fc.string({ maxLength: 20 }))
    .map(([ch, size, ct]) => {
      encodeContentHeader(headerWriter.reset(), size, { contentType: ct, headers: { k: ct } });
      return frame(FRAME_HEADER, ch, headerWriter.copyOut());
    }),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 300 }))
    .map(([ch, body]) => frame(FRAME_BODY, ch, body)),
  fc
    .tuple(fc.constantFrom(FRAME_METHOD, FRAME_HEADER, FRAME_BODY), fc.integer({ min: 0, max: 0xffff }))
    .map(([type, ch]) => frame(type, ch, Buffer.alloc(0))),
  fc.constant(HEARTBEAT_FRAME),
  fc.uint8Array({ minLength: 2000, maxLength: 5000 }).map((body) => frame(FRAME_BODY, 1, body)),
);

describe('FrameParser', () => {
  it('hands the sink the same frames whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(frameArbitrary, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, cuts) => {
          const stream = Buffer.concat(frames);
          const whole = recorder();
          whole.parser.push(stream);
          expect(whole.frames).toHaveLength(frames.length);
          expect(summary(whole.frames)).toEqual(
            frames.map((f) => `${f[0]}/${f.readUInt16BE(1)}/${f.subarray(7, f.length - 1).toString('hex')}`),
          );
          const split = recorder();
          for (const chunk of splitAt(stream, cuts)) split.parser.push(chunk);
          expect(summary(split.frames)).toEqual(summary(whole.frames));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('parses a stream fed one byte at a time', () => {
    const stream = Buffer.concat([
      HEARTBEAT_FRAME,
      encoder.method(7, 'basic.ack', { deliveryTag: 5, multiple: true }),
      frame(FRAME_BODY, 3, Buffer.from('hello')),
    ]);
    const r = recorder();
    for (let i = 0; i < stream.length; i++) r.parser.push(stream.subarray(i, i + 1));
    expect(r.frames.map((f) => [f.type, f.channel, f.payload.length])).toEqual([
      [FRAME_HEARTBEAT, 0, 0],
      [FRAME_METHOD, 7, 13],
      [FRAME_BODY, 3, 5],
    ]);
  });

  it('assembles a 7-byte frame header split across three reads', () => {
    const f = encoder.method(300, 'basic.qos', { prefetchSize: 0, prefetchCount: 10, global: false });
    const r = recorder();
    r.parser.push(f.subarray(0, 2));
    r.parser.push(f.subarray(2, 5));
    expect(r.frames).toHaveLength(0);
    r.parser.push(f.subarray(5));
    expect(r.frames).toHaveLength(1);
    expect(r.frames[0].channel).toBe(300);
    expect(decodeMethod(r.frames[0].payload).args).toEqual({ prefetchSize: 0, prefetchCount: 10, global: false });
  });

  it('handles a header split in three reads where the last read also carries part of the payload', () => {
    const f = frame(FRAME_BODY, 9, Buffer.from('0123456789'));
    const r = recorder();
    r.parser.push(f.subarray(0, 1));
    r.parser.push(f.subarray(1, 4));
    r.parser.push(f.subarray(4, 12));
    expect(r.frames).toHaveLength(0);
    r.parser.push(f.subarray(12));
    expect(r.frames[0].payload.toString()).toBe('0123456789');
  });

  it('parses 500 frames from one chunk, in order', () => {
    const frames: Buffer[] = [];
    for (let i = 0; i < 500; i++) {
      frames.push(
        i % 5 === 4
          ? HEARTBEAT_FRAME
          : encoder.method(i, 'basic.ack', { deliveryTag: i * 1000, multiple: i % 2 === 0 }),
      );
    }
    const r = recorder();
    r.parser.push(Buffer.concat(frames));
    expect(r.frames).toHaveLength(500);
    r.frames.forEach((f, i) => {
      if (i % 5 === 4) expect(f.type).toBe(FRAME_HEARTBEAT);
      else {
        expect(f.channel).toBe(i);
        expect(decodeMethod(f.payload).args).toEqual({ deliveryTag: i * 1000, multiple: i % 2 === 0 });
      }
    });
  });

  it('reads chunks that are views at a non-zero byteOffset into a bigger ArrayBuffer', () => {
    fc.assert(
      fc.property(
        fc.array(frameArbitrary, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 64 }),
        (frames, cuts, offset) => {
          const stream = Buffer.concat(frames);
          const big = new ArrayBuffer(stream.length + offset + 17);
          new Uint8Array(big).fill(0xaa);
          new Uint8Array(big).set(stream, offset);
          const whole = recorder();
          whole.parser.push(stream);
          const viewed = recorder();
          for (const part of splitAt(stream, cuts)) {
            const start = offset + part.byteOffset - stream.byteOffset;
            const chunk = Buffer.from(big, start, part.length);
            expect(chunk.byteOffset).toBe(start);
            viewed.parser.push(chunk);
          }
          expect(summary(viewed.frames)).toEqual(summary(whole.frames));
        },
      ),
      { numRuns: 100 },
    );
    // And the literal case: a view 13 bytes into a larger buffer.
    const f = encoder.method(2, 'basic.ack', { deliveryTag: 99, multiple: false });
    const big = Buffer.alloc(100, 0xee);
    f.copy(big, 13);
    const r = recorder();
    r.parser.push(Buffer.from(big.buffer, big.byteOffset + 13, f.length));
    expect(decodeMethod(r.frames[0].payload).args).toEqual({ deliveryTag: 99, multiple: false });
  });

  describe('allocation', () => {
    afterEach(() => jest.restoreAllMocks());

    it('never uses Buffer.concat, whatever the split', () => {
      const frames = [
        encoder.method(1, 'basic.deliver', {
          consumerTag: 'c',
          deliveryTag: 1,
          redelivered: false,
          exchange: '',
          routingKey: 'rk',
        }),
        frame(FRAME_BODY, 1, Buffer.alloc(10_000, 1)),
        HEARTBEAT_FRAME,
      ];
      const stream = Buffer.concat(frames);
      const concat = jest.spyOn(Buffer, 'concat');
      const r = recorder();
      for (let i = 0; i < stream.length; i += 777) r.parser.push(stream.subarray(i, i + 777));
      for (let i = 0; i < stream.length; i += 3) r.parser.push(stream.subarray(i, i + 3));
      expect(r.frames).toHaveLength(6);
      expect(concat).not.toHaveBeenCalled();
    });

    it('passes a frame wholly inside a chunk as a zero-copy view of that chunk', () => {
      const chunk = Buffer.concat([HEARTBEAT_FRAME, frame(FRAME_BODY, 4, Buffer.from('abc')), HEARTBEAT_FRAME]);
      const views: Buffer[] = [];
      new FrameParser(
        viewSink((_t, _c, payload) => views.push(payload)),
        FRAME_MAX,
      ).push(chunk);
      expect(views[1].buffer).toBe(chunk.buffer);
      expect(views[1].byteOffset).toBe(chunk.byteOffset + 8 + 7);
      expect(views[1].toString()).toBe('abc');
    });

    it('copies a straddling frame into one buffer allocated once, at its exact size', () => {
      const body = Buffer.alloc(50_000, 7);
      const f = frame(FRAME_BODY, 1, body);
      const alloc = jest.spyOn(Buffer, 'allocUnsafe');
      const r = recorder();
      for (let i = 0; i < f.length; i += 1000) r.parser.push(f.subarray(i, i + 1000));
      expect(alloc.mock.calls.filter(([n]) => n > 1000)).toEqual([[body.length + 1]]);
      expect(r.frames[0].payload.equals(body)).toBe(true);
    });
  });

  describe('with ContentAssembler', () => {
    afterEach(() => jest.restoreAllMocks());

    /** deliver + header + body frames of at most `maxFrameBody` bytes each, on channel 1. */
    function content(body: Buffer, maxFrameBody: number): Buffer {
      const w = new Writer(64);
      encodeContentHeader(w, body.length, { contentType: 'application/octet-stream' });
      const parts = [
        encoder.method(1, 'basic.deliver', {
          consumerTag: 'ctag',
          deliveryTag: 42,
          redelivered: true,
          exchange: 'x',
          routingKey: 'k',
        }),
        frame(FRAME_HEADER, 1, w.copyOut()),
      ];
      for (let off = 0; off < body.length; off += maxFrameBody) {
        parts.push(frame(FRAME_BODY, 1, body.subarray(off, off + maxFrameBody)));
      }
      return Buffer.concat(parts);
    }

    function assemble(chunks: Buffer[]): { body: Buffer; method: DecodedMethod }[] {
      const out: { body: Buffer; method: DecodedMethod }[] = [];
      const asm = new ContentAssembler<DecodedMethod>(10 * 1024 * 1024);
      const parser = new FrameParser(
        viewSink((type, _channel, payload) => {
          let done = null;
          if (type === FRAME_METHOD) asm.start(decodeMethod(payload));
          else if (type === FRAME_HEADER) done = asm.header(payload);
          else if (type === FRAME_BODY) done = asm.bodyFrame(payload);
          if (done) out.push({ body: done.body, method: done.method });
        }),
        FRAME_MAX,
      );
      for (const c of chunks) parser.push(c);
      return out;
    }

    it('assembles a body split across many frames into one buffer allocated once', () => {
      const body = Buffer.alloc(300_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
      const stream = content(body, FRAME_MAX - 8);
      expect(stream.length).toBeGreaterThan(2 * FRAME_MAX);
      const alloc = jest.spyOn(Buffer, 'allocUnsafe');
      const [msg] = assemble([stream]);
      // One chunk holds every frame, so the parser allocates nothing; the assembler allocates the body once.
      expect(alloc.mock.calls).toEqual([[body.length]]);
      expect(msg.body.equals(body)).toBe(true);
      expect(msg.body.length).toBe(body.length);
      expect(msg.method.name).toBe('basic.deliver');
    });

    it('assembles the same body from many small chunks', () => {
      const body = Buffer.from('x'.repeat(5000) + 'y'.repeat(5000));
      const stream = content(body, 999);
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += 333) chunks.push(stream.subarray(i, i + 333));
      expect(assemble(chunks)[0].body.toString()).toBe(body.toString());
    });

    it('passes a single-frame body on as a zero-copy view of the socket chunk', () => {
      const body = Buffer.from('single frame body');
      const stream = content(body, 1000);
      const alloc = jest.spyOn(Buffer, 'allocUnsafe');
      const [msg] = assemble([stream]);
      expect(alloc).not.toHaveBeenCalled();
      expect(msg.body.buffer).toBe(stream.buffer);
      expect(msg.body.byteOffset).toBe(stream.byteOffset + stream.length - 1 - body.length);
      expect(msg.body.toString()).toBe('single frame body');
    });

    it('finishes an empty body at the header', () => {
      const [msg] = assemble([content(Buffer.alloc(0), 10)]);
      expect(msg.body.length).toBe(0);
    });
  });
});
