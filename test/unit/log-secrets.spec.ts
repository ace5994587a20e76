import * as net from 'node:net';
import { AmqpSession, AuthenticationError, type Logger } from '../../lib/amqp';
import { FakeAmqpServer, type FakePeer } from '../support/fake-amqp-server';

/**
 * README (Configuration reference): passwords never appear in logs. A session is taken through what it
 * logs about — a refused endpoint, a lost connection and its reconnect, a consumer whose re-attach is
 * refused, a refused login — with a logger that keeps every line at every level; none may hold the
 * password, raw or percent-encoded, while the lines do name the endpoints (so the check is not vacuous).
 */
jest.setTimeout(20_000);

const PASSWORD = 'pa$$:w/rd@42';
const ENCODED = encodeURIComponent(PASSWORD);

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep =
    (level: string) =>
    (message: string): void => {
      lines.push(`${level} ${message}`);
    };
  return { logger: { debug: keep('debug'), log: keep('log'), warn: keep('warn'), error: keep('error') }, lines };
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Refuses the login as RabbitMQ does: connection.close 403 right after start-ok. */
async function refuseLogin(peer: FakePeer): Promise<void> {
  await peer.expectProtocolHeader();
  peer.sendStart();
  await peer.expect('connection.start-ok');
  peer.send(0, 'connection.close', {
    replyCode: 403,
    replyText: 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN',
    classId: 0,
    methodId: 0,
  });
}

describe('logs never hold the password (README)', () => {
  it('a session that loses its link, retries, has a consumer refused and is finally refused its login logs no password', async () => {
    let refuseFrom = Infinity;
    const server = await FakeAmqpServer.start(async (peer, index) => {
      if (index >= refuseFrom) return refuseLogin(peer);
      await peer.handshake();
      peer.ackPublishes = true;
      // The replayed consumer of the second connection is refused once: a setupFailed warn line.
      let refusedOnce = index === 0;
      peer.autoReply([], (m) => {
        if (m.method.name !== 'basic.consume' || refusedOnce) return false;
        refusedOnce = true;
        peer.send(m.channel, 'channel.close', {
          replyCode: 404,
          replyText: "NOT_FOUND - home node of queue 'jobs' is down",
          classId: 60,
          methodId: 20,
        });
        return true;
      });
    });
    const { logger, lines } = recordingLogger();
    const dead = await closedPort();
    const live = server.port;
    const session = new AmqpSession({
      url: [`amqp://alice:${ENCODED}@127.0.0.1:${dead}`, `amqp://alice:${ENCODED}@127.0.0.1:${live}`],
      connections: 'single',
      heartbeat: 0,
      logger,
      reconnect: { initialDelayMs: 5, maxDelayMs: 10, healthyAfterMs: 60_000 },
    });
    try {
      await session.connect();
      await session.consume('jobs', () => undefined);
      const setupFailed = new Promise<void>((resolve) => session.once('setupFailed', () => resolve()));
      (await server.peer(0)).destroy();
      await setupFailed;
      await session.whenReady(5000);

      refuseFrom = server.connectionCount;
      const failed = new Promise<Error>((resolve) => session.once('recoveryFailed', (_role, err) => resolve(err)));
      (await server.peer(refuseFrom - 1)).destroy();
      expect(await failed).toBeInstanceOf(AuthenticationError);
    } finally {
      await session.close({ timeoutMs: 1000 });
      await server.close();
    }

    const text = lines.join('\n');
    // What was logged: the refused endpoint, the loss, the refused consumer, the refused login.
    expect(text).toContain(`127.0.0.1:${dead}`);
    expect(text).toContain(`127.0.0.1:${live}`);
    expect(text).toMatch(/^warn .*consumer on queue 'jobs'/m);
    expect(text).toMatch(/^error session .*gave up connecting for good: .*ACCESS_REFUSED/m);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(ENCODED);
    expect(text).not.toContain('w/rd');
  });
});
