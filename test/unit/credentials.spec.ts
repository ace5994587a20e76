import {
  AmqpConnection,
  AmqpSession,
  ConfigError,
  type Credentials,
  type CredentialsProvider,
  type Logger,
} from '../../lib/amqp';
import { FakeAmqpServer, type FakePeer, type ReceivedMethod } from '../support/fake-amqp-server';
import { silentLogger, watchLeftovers } from '../support/leftovers';

/**
 * Rotating credentials against the scripted fake broker: the provider is asked on every connect, its secret is
 * what SASL sends, and an expiring secret is refreshed with connection.update-secret at 80 % of its lifetime;
 * a failed refresh is reported without the secret and tried again.
 */
jest.setTimeout(20_000);

const servers: FakeAmqpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A fake broker that answers update-secret (and records each one's new secret). */
async function broker(): Promise<{ server: FakeAmqpServer; secrets: string[]; logins: string[] }> {
  const secrets: string[] = [];
  const logins: string[] = [];
  const server = await FakeAmqpServer.start(async (peer: FakePeer) => {
    const { startOk } = await peer.handshake();
    logins.push(Buffer.from(startOk.response as unknown as Buffer).toString('utf8'));
    peer.autoReply([], (m: ReceivedMethod) => {
      if (m.method.name !== 'connection.update-secret') return false;
      secrets.push((m.method.args as { newSecret: Buffer | string }).newSecret.toString());
      peer.send(0, 'connection.update-secret-ok', {});
      return true;
    });
  });
  servers.push(server);
  return { server, secrets, logins };
}

function rotating(lifetimeMs: number): { provider: CredentialsProvider; calls: () => number } {
  let n = 0;
  const provider = (): Credentials => {
    n++;
    return { username: 'svc', password: `secret-${n}`, expiresAt: Date.now() + lifetimeMs };
  };
  return { provider, calls: () => n };
}

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: { ...silentLogger, warn: (m) => lines.push(m), error: (m) => lines.push(m) }, lines };
}

describe('credentials: a provider instead of the URL password', () => {
  it('is asked on every connect; its username and password are what PLAIN sends, not the URL’s', async () => {
    const { server, logins } = await broker();
    const { provider, calls } = rotating(60_000);
    const session = new AmqpSession({
      url: server.url(),
      credentials: provider,
      connections: 'single',
      heartbeat: 0,
      logger: silentLogger,
      reconnect: { initialDelayMs: 5 },
    });
    try {
      await session.connect();
      const recovered = new Promise<void>((resolve) => session.once('recovered', () => resolve()));
      (await server.peer(0)).destroy();
      await recovered;
      expect(calls()).toBe(2);
      expect(logins).toEqual(['\0svc\0secret-1', '\0svc\0secret-2']);
    } finally {
      await session.close({ timeoutMs: 1000 });
    }
  });

  it('a token is sent as the password, with an empty username', async () => {
    const { server, logins } = await broker();
    const conn = await AmqpConnection.connect({
      url: server.url(),
      credentials: async () => ({ token: 'eyJ.token' }),
      logger: silentLogger,
    });
    await conn.close();
    expect(logins).toEqual(['\0\0eyJ.token']);
  });

  it('an expiring secret is refreshed with connection.update-secret at 80 % of its lifetime, without reconnecting', async () => {
    const { server, secrets } = await broker();
    const { provider } = rotating(500);
    const conn = await AmqpConnection.connect({ url: server.url(), credentials: provider, logger: silentLogger });
    try {
      const started = Date.now();
      await new Promise<void>((resolve) => conn.once('secretUpdated', () => resolve()));
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      expect(secrets).toEqual(['secret-2']);
      // And again for the new secret's own lifetime.
      await new Promise<void>((resolve) => conn.once('secretUpdated', () => resolve()));
      expect(secrets).toEqual(['secret-2', 'secret-3']);
      expect(server.connectionCount).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('a provider that fails a refresh is reported (no secret in the log) and asked again before the secret expires', async () => {
    const { server, secrets } = await broker();
    let n = 0;
    const provider = (): Credentials => {
      n++;
      if (n === 2) throw new Error('vault unreachable');
      return { username: 'svc', password: `pw-${n}`, expiresAt: Date.now() + 400 };
    };
    const { logger, lines } = recordingLogger();
    const conn = await AmqpConnection.connect({ url: server.url(), credentials: provider, logger });
    try {
      const failed = await new Promise<[Error, number]>((resolve) =>
        conn.once('secretRefreshFailed', (err, retryInMs) => resolve([err, retryInMs])),
      );
      expect(failed[0].message).toContain('vault unreachable');
      expect(failed[1]).toBeLessThan(400);
      await new Promise<void>((resolve) => conn.once('secretUpdated', () => resolve()));
      expect(secrets).toEqual(['pw-3']);
      expect(lines.join('\n')).toMatch(
        /refreshing the credentials failed \(the credentials provider failed: vault unreachable\)/,
      );
      expect(lines.join('\n')).not.toMatch(/pw-\d/);
    } finally {
      await conn.close();
    }
  });

  it('a provider returning no password is a ConfigError naming the field, and nothing is sent', async () => {
    const { server } = await broker();
    const err = await AmqpConnection.connect({
      url: server.url(),
      credentials: (() => ({ username: 'svc' })) as unknown as CredentialsProvider,
      logger: silentLogger,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('credentials.password');
    expect(server.connectionCount).toBe(0);
  });

  it('credentials must be a function', () => {
    expect(() => new AmqpSession({ credentials: 'guest:guest' as unknown as CredentialsProvider })).toThrow(
      /credentials: must be a function/,
    );
  });

  it('closing stops the refresh timer: no timer or socket is left behind', async () => {
    const { server } = await broker();
    const watch = await watchLeftovers();
    const conn = await AmqpConnection.connect({
      url: server.url(),
      credentials: rotating(60_000).provider,
      logger: silentLogger,
    });
    await conn.close();
    await (
      await server.peer(0)
    ).closed; // the fake broker's side of the socket goes too
    await watch.expectNone();
  });
});
