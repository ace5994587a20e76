import { once } from 'node:events';
import * as net from 'node:net';
import {
  AmqpConnection,
  AmqpSession,
  AuthenticationError,
  ClosedError,
  ConnectionError,
  ProtocolError,
  ReplyCode,
  VhostError,
} from '../../lib';
import { resolveConnectionOptions } from '../../lib/amqp/url';
import { FRAME_METHOD } from '../../lib/amqp/protocol/frame-parser';
import { fakeServersPerTest, rawFrame, type FakePeer } from '../support/fake-amqp-server';
import { silentLogger, watchLeftovers } from '../support/leftovers';

jest.setTimeout(15_000);

const fakeServer = fakeServersPerTest();

async function connectError(url: string): Promise<Error> {
  try {
    const conn = await AmqpConnection.connect({ url, logger: silentLogger });
    await conn.close();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected connect() to fail');
}

/** The server side up to start-ok: connection.start sent, the client's start-ok received. */
async function untilStartOk(peer: FakePeer): Promise<void> {
  await peer.expectProtocolHeader();
  peer.sendStart({ mechanisms: 'PLAIN' });
  await peer.expect('connection.start-ok');
}

/** The server side up to connection.open: start/start-ok and tune/tune-ok done, the client's open received. */
async function untilOpen(peer: FakePeer): Promise<void> {
  await untilStartOk(peer);
  peer.send(0, 'connection.tune', { channelMax: 2047, frameMax: 131072, heartbeat: 0 });
  await peer.expect('connection.tune-ok');
  await peer.expect('connection.open');
}

const close = (replyCode: number, classId: number, methodId: number) => ({
  replyCode,
  replyText: `CODE_${replyCode}`,
  classId,
  methodId,
});

describe('AmqpConnection handshake: frames in the same read as open-ok', () => {
  it('a connection.blocked that came with open-ok leaves the connection blocked and reaches a listener attached right after connect()', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake({ withOpenOk: [peer.frame(0, 'connection.blocked', { reason: 'low on memory' })] });
    });
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    try {
      expect(conn.isBlocked).toBe(true);
      const [reason] = (await once(conn, 'blocked')) as [string];
      expect(reason).toBe('low on memory');
    } finally {
      await conn.close();
    }
  });

  it('blocked then unblocked in the open-ok read reach the listener in order and leave the connection unblocked', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake({
        withOpenOk: [
          peer.frame(0, 'connection.blocked', { reason: 'disk' }),
          peer.frame(0, 'connection.unblocked', {}),
        ],
      });
    });
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    try {
      expect(conn.isBlocked).toBe(false);
      const seen: string[] = [];
      conn.on('blocked', (r) => seen.push(`blocked:${r}`));
      const unblocked = once(conn, 'unblocked').then(() => seen.push('unblocked'));
      await unblocked;
      expect(seen).toEqual(['blocked:disk', 'unblocked']);
    } finally {
      await conn.close();
    }
  });

  it('a connection.close that came with open-ok makes connect() reject with the broker ConnectionError and its reply code', async () => {
    const leftovers = await watchLeftovers();
    let peer0: FakePeer | undefined;
    const server = await fakeServer(async (peer) => {
      peer0 = peer;
      await peer.handshake({
        withOpenOk: [peer.frame(0, 'connection.close', close(ReplyCode.CONNECTION_FORCED, 0, 0))],
      });
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).not.toBeInstanceOf(AuthenticationError);
    expect(err).not.toBeInstanceOf(VhostError);
    expect((err as ConnectionError).replyCode).toBe(320);
    await peer0?.clientGone();
    await leftovers.expectNone();
  });

  it('a malformed frame that came with open-ok makes connect() reject with ProtocolError and leaves no heartbeat timer, socket or timer', async () => {
    const leftovers = await watchLeftovers();
    let peer0: FakePeer | undefined;
    const server = await fakeServer(async (peer) => {
      peer0 = peer;
      // heartbeat 1 s: the heartbeat starts at open-ok, just before the bad frame is read.
      await peer.handshake({ heartbeat: 1, withOpenOk: [rawFrame(0x42, 0, Buffer.alloc(4))] });
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/unknown frame type 66/);
    await peer0?.clientGone();
    await leftovers.expectNone(); // the heartbeat's interval included (it is unref'd)
  });

  it('a frame announced above the negotiated frame_max (after tune) fails the connection before its payload is buffered', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake({ frameMax: 4096 });
      // Only the 7-byte header of a 1 GiB method frame: a parser that allocated by the header would take 1 GiB.
      const header = Buffer.alloc(7);
      header.writeUInt8(FRAME_METHOD, 0);
      header.writeUInt16BE(1, 1);
      header.writeUInt32BE(1 << 30, 3);
      peer.write(header);
    });
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    const [err] = (await once(conn, 'close')) as [Error];
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).replyCode).toBe(ReplyCode.FRAME_ERROR);
    expect(err.message).toMatch(/exceeds the negotiated frame_max 4096/);
    await conn.close();
  });
});

describe('AmqpConnection handshake: a broker close is classified by the failed method, then by the step', () => {
  it('530 naming connection.start-ok (10/11) is an AuthenticationError, not a VhostError', async () => {
    const server = await fakeServer(async (peer) => {
      await untilStartOk(peer);
      peer.send(0, 'connection.close', close(ReplyCode.NOT_ALLOWED, 10, 11));
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).replyCode).toBe(530);
    expect((err as AuthenticationError).failedMethod?.methodName).toBe('connection.start-ok');
  });

  it('403 naming connection.start-ok is an AuthenticationError', async () => {
    const server = await fakeServer(async (peer) => {
      await untilStartOk(peer);
      peer.send(0, 'connection.close', close(ReplyCode.ACCESS_REFUSED, 10, 11));
    });
    expect(await connectError(server.url())).toBeInstanceOf(AuthenticationError);
  });

  it('530 naming connection.open (10/40) is a VhostError', async () => {
    const server = await fakeServer(async (peer) => {
      await untilOpen(peer);
      peer.send(0, 'connection.close', close(ReplyCode.NOT_ALLOWED, 10, 40));
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(VhostError);
    expect((err as VhostError).replyCode).toBe(530);
  });

  it('403 naming connection.open (access to the vhost refused) is a VhostError, not an AuthenticationError', async () => {
    const server = await fakeServer(async (peer) => {
      await untilOpen(peer);
      peer.send(0, 'connection.close', close(ReplyCode.ACCESS_REFUSED, 10, 40));
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(VhostError);
    expect(err).not.toBeInstanceOf(AuthenticationError);
  });

  it('a 530 naming no method right after start-ok is an AuthenticationError (the step was the login)', async () => {
    const server = await fakeServer(async (peer) => {
      await untilStartOk(peer);
      peer.send(0, 'connection.close', close(ReplyCode.NOT_ALLOWED, 0, 0));
    });
    expect(await connectError(server.url())).toBeInstanceOf(AuthenticationError);
  });

  it('a 403 naming no method after connection.open is a VhostError (the step was the vhost)', async () => {
    const server = await fakeServer(async (peer) => {
      await untilOpen(peer);
      peer.send(0, 'connection.close', close(ReplyCode.ACCESS_REFUSED, 0, 0));
    });
    expect(await connectError(server.url())).toBeInstanceOf(VhostError);
  });

  it('a close that is not a refusal (541) during the handshake is a plain ConnectionError', async () => {
    const server = await fakeServer(async (peer) => {
      await untilStartOk(peer);
      peer.send(0, 'connection.close', close(ReplyCode.INTERNAL_ERROR, 10, 11));
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).not.toBeInstanceOf(AuthenticationError);
    expect(err).not.toBeInstanceOf(VhostError);
    expect((err as ConnectionError).replyCode).toBe(541);
  });
});

describe('AmqpConnection handshake: frame_max in connection.tune', () => {
  it('refuses a broker frame_max below the spec minimum (4096) with a ProtocolError naming frame_max', async () => {
    const server = await fakeServer(async (peer) => {
      await untilStartOk(peer);
      peer.send(0, 'connection.tune', { channelMax: 2047, frameMax: 1024, heartbeat: 0 });
    });
    const err = await connectError(server.url());
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/frame_max 1024 is below the AMQP minimum of 4096/);
  });

  it("takes the broker's frame_max of 4096 as it is (not raised to our 8192 floor) and says so in tune-ok", async () => {
    let tuneOkFrameMax = -1;
    const server = await fakeServer(async (peer) => {
      tuneOkFrameMax = (await peer.handshake({ frameMax: 4096 })).tuneOk.frameMax;
      peer.autoReply();
    });
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    try {
      expect(conn.frameMax).toBe(4096);
      expect(tuneOkFrameMax).toBe(4096);
    } finally {
      await conn.close();
    }
  });

  it('a broker frame_max of 0 (no limit) negotiates ours', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake({ frameMax: 0 });
      peer.autoReply();
    });
    const conn = await AmqpConnection.connect({ url: server.url('frame_max=65536'), logger: silentLogger });
    try {
      expect(conn.frameMax).toBe(65536);
    } finally {
      await conn.close();
    }
  });
});

describe('AmqpConnection.connectOnce: abort', () => {
  const attempt = (url: string, signal: AbortSignal): Promise<AmqpConnection> => {
    const options = resolveConnectionOptions(url);
    return AmqpConnection.connectOnce(options.endpoints[0], options, silentLogger, signal);
  };

  it('an already aborted signal rejects with ClosedError and opens no socket', async () => {
    const server = await fakeServer(() => undefined);
    const ac = new AbortController();
    ac.abort();
    await expect(attempt(server.url(), ac.signal)).rejects.toThrow(new ClosedError('connect aborted'));
    expect(server.connectionCount).toBe(0);
  });

  it('aborting during the TLS connect destroys the socket and leaves no timer', async () => {
    // A plain TCP server that never answers the TLS ClientHello: the connect stays pending.
    const sockets: net.Socket[] = [];
    const tcp = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const accepted = once(tcp, 'connection');
    try {
      const leftovers = await watchLeftovers();
      const ac = new AbortController();
      const { port } = tcp.address() as net.AddressInfo;
      const pending = attempt(`amqps://guest:guest@127.0.0.1:${port}?verify=false`, ac.signal);
      await accepted;
      const serverSideClosed = once(sockets[0], 'close');
      ac.abort();
      await expect(pending).rejects.toThrow(new ClosedError('connect aborted'));
      await serverSideClosed;
      await leftovers.expectNone();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it('aborting during the AMQP handshake destroys the socket and clears the handshake timer', async () => {
    const leftovers = await watchLeftovers();
    let peer0: FakePeer | undefined;
    const ac = new AbortController();
    const server = await fakeServer(async (peer) => {
      peer0 = peer;
      await peer.expectProtocolHeader();
      ac.abort(); // the broker never sends connection.start
    });
    await expect(attempt(server.url('handshake_timeout=10'), ac.signal)).rejects.toThrow(
      new ClosedError('connect aborted'),
    );
    await peer0?.clientGone();
    await leftovers.expectNone();
  });

  it('aborting after the connection is open changes nothing (the listener is gone)', async () => {
    const server = await fakeServer(async (peer) => {
      await peer.handshake();
      peer.autoReply();
    });
    const ac = new AbortController();
    const conn = await attempt(server.url(), ac.signal);
    ac.abort();
    expect(conn.isOpen).toBe(true);
    await conn.close();
  });
});

describe('AmqpSession over a connection whose open-ok read carried a malformed frame', () => {
  it('counts the attempt as failed and reconnects until it is ready', async () => {
    const server = await fakeServer(async (peer) => {
      const first = server.connectionCount <= 2;
      await peer.handshake({ withOpenOk: first ? [rawFrame(0x42, 0, Buffer.alloc(4))] : [] });
      peer.autoReply();
    });
    const session = new AmqpSession({
      url: server.url(),
      logger: silentLogger,
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    try {
      await session.connect();
      expect(session.isReady).toBe(true);
      expect(server.connectionCount).toBe(4); // a failed attempt per role, then one connection per role
    } finally {
      await session.close();
    }
  });
});
