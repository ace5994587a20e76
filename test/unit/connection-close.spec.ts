import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { AmqpConnection, ConnectionError, ProtocolError } from '../../lib';
import { FakeAmqpServer, rawFrame, type FakePeer } from '../support/fake-amqp-server';
import { silentLogger, watchLeftovers } from '../support/leftovers';

jest.setTimeout(20_000);

const servers: FakeAmqpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A fake broker whose every peer handshakes, then runs `then` (its close-ok behaviour is the test's). */
async function fakeServer(then: (peer: FakePeer) => Promise<void> | void = () => undefined): Promise<FakeAmqpServer> {
  const s = await FakeAmqpServer.start(async (peer) => {
    await peer.handshake({ heartbeat: 1 });
    await then(peer);
  });
  servers.push(s);
  return s;
}

/** Resolves when the client has sent its FIN (or reset): the server side is half-open and stays up. */
const clientEnded = (peer: FakePeer): Promise<unknown> =>
  peer.socket.readableEnded ? Promise.resolve() : Promise.race([once(peer.socket, 'end'), peer.closed]);

describe('AmqpConnection.close(): the socket is destroyed and nothing is left', () => {
  it('a normal close (close-ok, peer ends TCP) leaves no socket, timer or heartbeat behind', async () => {
    const leftovers = await watchLeftovers();
    const server = await fakeServer((peer) => peer.autoReply());
    const conn = await AmqpConnection.connect({ url: server.url(), logger: silentLogger });
    await conn.channel();
    await conn.close();
    await (await server.peer(0)).clientGone();
    await leftovers.expectNone();
  });

  it('a peer that never answers close-ok and keeps TCP open: close() destroys the socket after min(operation_timeout, 5 s)', async () => {
    const leftovers = await watchLeftovers();
    const server = await fakeServer(); // reads connection.close, answers nothing, never ends TCP
    const conn = await AmqpConnection.connect({ url: server.url('operation_timeout=0.3'), logger: silentLogger });
    const peer = await server.peer(0);
    const started = Date.now();
    await conn.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    expect(peer.count('connection.close')).toBe(1);
    await clientEnded(peer);
    await peer.clientGone();
    await leftovers.expectNone();
  });

  it('the close-ok wait is capped at 5 s even with a long operation_timeout', async () => {
    const server = await fakeServer();
    // heartbeat=0: the fake peer sends no heartbeats, which would end the connection after 2 s.
    const conn = await AmqpConnection.connect({
      url: server.url('operation_timeout=60&heartbeat=0'),
      logger: silentLogger,
    });
    const started = Date.now();
    await conn.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(4900);
    expect(took).toBeLessThan(8000);
  });

  it('a peer that answers close-ok but never ends TCP: close() destroys the socket at close-ok, without waiting', async () => {
    const leftovers = await watchLeftovers();
    const server = await fakeServer(async (peer) => {
      await peer.expect('connection.close');
      peer.send(0, 'connection.close-ok', {}); // and keeps its side open
    });
    const conn = await AmqpConnection.connect({ url: server.url('operation_timeout=10'), logger: silentLogger });
    const started = Date.now();
    await conn.close();
    expect(Date.now() - started).toBeLessThan(2000);
    const peer = await server.peer(0);
    await clientEnded(peer);
    await peer.clientGone();
    await leftovers.expectNone();
  });

  it('close() on a connection the broker already closed destroys the lingering socket at once', async () => {
    const leftovers = await watchLeftovers();
    const server = await fakeServer((peer) =>
      peer.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 }),
    );
    const conn = await AmqpConnection.connect({ url: server.url('operation_timeout=10'), logger: silentLogger });
    const [err] = (await once(conn, 'close')) as [ConnectionError];
    expect(err.replyCode).toBe(320);
    const started = Date.now();
    await conn.close();
    expect(Date.now() - started).toBeLessThan(2000);
    const peer = await server.peer(0);
    await peer.expect('connection.close-ok');
    await peer.clientGone();
    await leftovers.expectNone();
  });
});

describe('AmqpConnection: a process whose connection has ended exits, whatever the peer does with TCP', () => {
  const fixture = path.join(__dirname, '../support/connect-until-closed.ts');
  const root = path.join(__dirname, '../..');

  /** Runs the fixture against `url`; resolves with its output once it exits (rejects if it has not after `withinMs`). */
  async function runChild(url: string, mode: 'wait' | 'close', withinMs: number): Promise<string> {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', fixture, url, mode], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(child, 'exit');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        exited,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the child did not exit within ${withinMs} ms: ${out}`)), withinMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
    }
    return out;
  }

  it('the broker closes the connection (320) and keeps TCP open: the child exits after the bounded wait', async () => {
    const server = await fakeServer((peer) =>
      peer.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 }),
    );
    const out = await runChild(server.url('operation_timeout=0.5'), 'wait', 10_000);
    expect(out).toContain('closed 320');
  });

  it('a protocol error closes the connection and the peer keeps TCP open: the child exits after the bounded wait', async () => {
    const server = await fakeServer((peer) => peer.write(rawFrame(0x42, 0, Buffer.alloc(1))));
    const out = await runChild(server.url('operation_timeout=0.5'), 'wait', 10_000);
    expect(out).toContain(`closed ${ProtocolError.name}`);
  });

  it('the application closes and the peer never answers close-ok nor ends TCP: the child exits after the bounded wait', async () => {
    const server = await fakeServer();
    const out = await runChild(server.url('operation_timeout=0.5'), 'close', 10_000);
    expect(out).toContain('closed by the application');
  });
});
