import {
  AmqpConnection,
  ConnectionLostError,
  ProtocolError,
  ReplyCode,
  TimeoutError,
  type AmqpError,
  type Message,
} from '../../lib';
import { FRAME_BODY, FRAME_METHOD } from '../../lib/amqp/protocol/frame-parser';
import { fakeServersPerTest, rawFrame, type FakePeer } from '../support/fake-amqp-server';
import { recordAllocations } from '../support/allocations';
import { silentLogger, watchLeftovers } from '../support/leftovers';

/**
 * Hostile peers at the socket level, during the handshake: whatever the server does (nothing, garbage, a
 * frame announcing 4 GiB, a foreign protocol, lying lengths, a hang-up), connect() fails with a typed
 * error within handshake_timeout, allocates nothing in proportion to what was announced, and leaves no
 * socket or timer behind.
 */
jest.setTimeout(10_000);

const HANDSHAKE_TIMEOUT_MS = 1000;
const MiB = 1024 * 1024;

/** The real setTimeout, for the scripts' own pacing (watchLeftovers counts timers made through the global). */
const realSetTimeout = globalThis.setTimeout;
const pause = (ms: number): Promise<void> => new Promise((resolve) => realSetTimeout(resolve, ms));

const fakeServer = fakeServersPerTest();

interface Outcome {
  err: AmqpError;
  elapsedMs: number;
  /** The largest single Buffer allocation made while connecting. */
  largestAllocation: number;
}

/**
 * connect() (handshake_timeout 1 s) to a server running `script`; expects it to fail, then expects the
 * peer's socket gone and no socket or timer left on our side.
 */
async function failedConnect(script: (peer: FakePeer) => Promise<void> | void): Promise<Outcome> {
  let peer0: FakePeer | undefined;
  const server = await fakeServer((peer) => {
    peer0 = peer;
    return script(peer);
  });
  const leftovers = await watchLeftovers();
  const { sizes, stop: stopRecording } = recordAllocations();
  const started = Date.now();
  let err: unknown;
  try {
    const conn = await AmqpConnection.connect({
      url: server.url(`handshake_timeout=${HANDSHAKE_TIMEOUT_MS / 1000}&connection_attempts=1`),
      logger: silentLogger,
    });
    await conn.close();
  } catch (e) {
    err = e;
  } finally {
    stopRecording();
  }
  const elapsedMs = Date.now() - started;
  if (err === undefined) throw new Error('expected connect() to fail');
  await peer0?.clientGone();
  await leftovers.expectNone();
  return { err: err as AmqpError, elapsedMs, largestAllocation: Math.max(0, ...sizes) };
}

/** connection.start as a broker sends it. */
function sendStart(peer: FakePeer): void {
  peer.sendStart({ mechanisms: 'PLAIN' });
}

describe('AmqpConnection.connect against a hostile peer: a typed error within handshake_timeout, nothing left', () => {
  it('a silent server (TCP accepted, not a byte sent): TimeoutError after handshake_timeout, not later', async () => {
    const { err, elapsedMs } = await failedConnect(() => undefined);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/handshake .* timed out after 1000 ms/);
    expect(elapsedMs).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 1000);
  });

  it('a server that drips valid bytes slowly (one every 100 ms) is still cut at handshake_timeout', async () => {
    const { err, elapsedMs } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      const start = peer.frame(0, 'connection.start', {
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: { product: 'FakeAMQP' },
        mechanisms: 'PLAIN',
        locales: 'en_US',
      });
      for (const byte of start) {
        if (peer.ended) return;
        peer.write(Buffer.from([byte]));
        await pause(100);
      }
    });
    expect(err).toBeInstanceOf(TimeoutError);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 1000);
  });

  it('garbage instead of connection.start: ProtocolError (FRAME_ERROR) at once', async () => {
    const { err, elapsedMs } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      peer.write(Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).replyCode).toBe(ReplyCode.FRAME_ERROR);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
  });

  it('a frame header announcing 4 GiB (0xffffffff) before connection.start: ProtocolError, nothing allocated for it', async () => {
    const { err, elapsedMs, largestAllocation } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      const header = Buffer.alloc(7);
      header.writeUInt8(FRAME_METHOD, 0);
      header.writeUInt16BE(0, 1);
      header.writeUInt32BE(0xffffffff, 3);
      peer.write(header);
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).replyCode).toBe(ReplyCode.FRAME_ERROR);
    expect(err.message).toMatch(/exceeds the negotiated frame_max/);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
    expect(largestAllocation).toBeLessThan(MiB);
  });

  it.each([
    ['AMQP 1.0', Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')],
    ['AMQP 1.0 over SASL', Buffer.from('AMQP\x03\x01\x00\x00', 'latin1')],
    ['AMQP 0-9-1 refused, 0-8 offered', Buffer.from('AMQP\x01\x01\x08\x00', 'latin1')],
  ])('a protocol header back (%s): ProtocolError saying the broker does not speak 0-9-1', async (_, header) => {
    const { err, elapsedMs } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      peer.write(header);
      peer.end(); // as a broker does after announcing the protocol it speaks
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/does not speak AMQP 0-9-1/);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
  });

  it('a protocol header split across two TCP writes is refused just the same (no wait for the timeout)', async () => {
    const { err, elapsedMs } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      peer.write(Buffer.from('AM', 'latin1'));
      await pause(20);
      peer.write(Buffer.from('QP\x00\x01\x00\x00', 'latin1'));
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
  });

  it('connection.start whose server-properties table claims 4 GiB: ProtocolError (SYNTAX_ERROR), nothing allocated for it', async () => {
    const { err, elapsedMs, largestAllocation } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      // class 10, method 10, version 0-9, then the table's length: 0xffffffff, and no table.
      const payload = Buffer.alloc(4 + 2 + 4 + 8);
      payload.writeUInt16BE(10, 0);
      payload.writeUInt16BE(10, 2);
      payload.writeUInt8(0, 4);
      payload.writeUInt8(9, 5);
      payload.writeUInt32BE(0xffffffff, 6);
      peer.write(rawFrame(FRAME_METHOD, 0, payload));
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
    expect(largestAllocation).toBeLessThan(MiB);
  });

  it('connection.tune cut short inside a valid frame (its arguments shorter than the method): ProtocolError', async () => {
    const { err } = await failedConnect(async (peer) => {
      await peer.expectProtocolHeader();
      sendStart(peer);
      await peer.expect('connection.start-ok');
      // connection.tune is 2+2+4+2 bytes of arguments; this one is cut after channel_max.
      const payload = Buffer.alloc(4 + 2);
      payload.writeUInt16BE(10, 0);
      payload.writeUInt16BE(30, 2);
      payload.writeUInt16BE(2047, 4);
      peer.write(rawFrame(FRAME_METHOD, 0, payload));
    });
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).replyCode).toBe(ReplyCode.SYNTAX_ERROR);
  });

  it.each([
    ['before connection.start', async (peer: FakePeer) => peer.expectProtocolHeader()],
    [
      'after start-ok',
      async (peer: FakePeer) => {
        await peer.expectProtocolHeader();
        sendStart(peer);
        await peer.expect('connection.start-ok');
      },
    ],
    [
      'after connection.open',
      async (peer: FakePeer) => {
        await peer.expectProtocolHeader();
        sendStart(peer);
        await peer.expect('connection.start-ok');
        peer.send(0, 'connection.tune', { channelMax: 2047, frameMax: 131072, heartbeat: 0 });
        await peer.expect('connection.tune-ok');
        await peer.expect('connection.open');
      },
    ],
  ])('the server hangs up %s: ConnectionLostError at once, not a timeout', async (_, upTo) => {
    const { err, elapsedMs } = await failedConnect(async (peer) => {
      await upTo(peer);
      peer.destroy();
    });
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(elapsedMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS);
  });
});

describe('a delivery announcing a 1 TiB body', () => {
  it('allocates nothing for it while its body is skipped, and the connection keeps serving other channels', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake();
      peer.autoReply();
    });
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    try {
      const ch = await conn.channel();
      const other = await conn.channel();
      const messages: Message[] = [];
      await ch.consume('q', (m) => void messages.push(m), { consumerTag: 'c1' });
      const small = new Promise<Message>((resolve) => void other.consume('q2', resolve, { consumerTag: 'c2' }));
      await other.consume('q3', () => undefined, { consumerTag: 'c3' }); // a barrier: c2's consume-ok is in
      const peer = await server.peer(0);
      const TiB = 2 ** 40;
      const bodyFrame = rawFrame(FRAME_BODY, ch.id, Buffer.alloc(64 * 1024));
      // Encoded before the allocations are watched (the fake server's own Buffer.concat is not the client's).
      const hostile = Buffer.concat([
        peer.frame(ch.id, 'basic.deliver', {
          consumerTag: 'c1',
          deliveryTag: 1,
          redelivered: false,
          exchange: '',
          routingKey: 'q',
        }),
        ...peer.contentFrames_(ch.id, Buffer.alloc(0), {}, TiB),
        // 4 MiB of it: a client that allocated by the header would already hold 1 TiB (or have thrown).
        ...Array.from({ length: 64 }, () => bodyFrame),
        peer.frame(other.id, 'basic.deliver', {
          consumerTag: 'c2',
          deliveryTag: 1,
          redelivered: false,
          exchange: '',
          routingKey: 'q2',
        }),
        ...peer.contentFrames_(other.id, Buffer.from('still served')),
      ]);
      const { sizes, stop: stopRecording } = recordAllocations();
      peer.socket.write(hostile);
      const got = await small;
      stopRecording();
      expect(got.body.toString()).toBe('still served');
      expect(Math.max(0, ...sizes)).toBeLessThan(MiB);
      expect(messages).toEqual([]);
      expect(conn.isOpen).toBe(true);
      expect(ch.isOpen).toBe(true);
    } finally {
      conn.destroy();
    }
  });
});
