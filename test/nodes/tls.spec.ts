import { EventPattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import {
  AmqpConnection,
  AmqpSession,
  AuthenticationError,
  CertificateError,
  ReplyCode,
  type ConnectOptions,
  type SessionMessage,
} from '../../lib/amqp';
import { AmqpClient, AmqpController } from '../../lib/nest';
import { uniqueName } from '../support/broker';
import { closeAll, deferred, Recorder, rejection, startMicroservice } from '../support/nest-support';
import { CLIENT_CN, KEY_PASSPHRASE, UNKNOWN_CN } from '../support/tls-fixtures';
import { startTlsNode, type TlsNode } from '../support/tls-node';

jest.setTimeout(60_000);

const silent = { warn: () => undefined, error: () => undefined };

/** One TLS node for the whole file: AMQP on 5684, TLS on 5685 (distribution 25684). */
let tls: TlsNode;

beforeAll(async () => {
  tls = await startTlsNode('warren-tls', 5684, 5685);
  process.stdout.write(`TLS node up in ${tls.startMs} ms\n`);
}, 120_000);

afterAll(async () => {
  await tls?.stop();
});

/** How the broker sees a connection, found by its connection name. */
async function brokerView(connectionName: string): Promise<{ user: string; auth: string; ssl: boolean }> {
  const out = await tls.node.ctl([
    'list_connections',
    'user',
    'auth_mechanism',
    'ssl',
    'client_properties',
    '--formatter',
    'json',
  ]);
  const rows = JSON.parse(out.trim() || '[]') as Array<Record<string, unknown>>;
  const row = rows.find((r) => JSON.stringify(r.client_properties).includes(connectionName));
  if (!row) throw new Error(`connection ${connectionName} is not listed: ${out}`);
  return { user: String(row.user), auth: String(row.auth_mechanism), ssl: row.ssl === true };
}

/** Connects, hands the connection to `use`, closes it. */
async function withConnection(options: ConnectOptions, use: (conn: AmqpConnection) => Promise<void>): Promise<void> {
  const conn = await AmqpConnection.connect(options);
  try {
    await use(conn);
  } finally {
    await conn.close();
  }
}

async function connectError(options: ConnectOptions): Promise<Error> {
  return rejection(AmqpConnection.connect(options).then((c) => c.close()));
}

function clientCert(): { cert: string; key: string } {
  return { cert: tls.pki.pem.clientCert, key: tls.pki.pem.clientKey };
}

describe('TLS node: server verification', () => {
  it('amqps:// verifies the server against the given CA and logs in with PLAIN over TLS', async () => {
    const connectionName = uniqueName('tls-plain');
    await withConnection(
      { url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}`, tls: { ca: tls.pki.pem.ca }, connectionName },
      async (conn) => {
        expect(conn.isOpen).toBe(true);
        expect(await brokerView(connectionName)).toEqual({ user: 'guest', auth: 'PLAIN', ssl: true });
      },
    );
  });

  it('the CA may come from a URL query file path (ca=...)', async () => {
    const url = `amqps://guest:guest@127.0.0.1:${tls.tlsPort}?ca=${encodeURIComponent(tls.pki.files.ca)}`;
    await withConnection({ url }, async (conn) => expect(conn.isOpen).toBe(true));
  });

  it('without a CA the server certificate is refused (verification is on by default)', async () => {
    const err = await connectError({ url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}` });
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as CertificateError).code).toMatch(/SELF_SIGNED|UNABLE_TO/);
    expect(err.message).toContain(`127.0.0.1:${tls.tlsPort}`);
    expect(err.message).toMatch(/self[- ]signed|unable to (get|verify)|certificate/i);
  });

  it('a CA that did not sign the server certificate is refused', async () => {
    const err = await connectError({
      url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}`,
      tls: { ca: tls.pki.pem.otherCa },
    });
    expect(err).toBeInstanceOf(CertificateError);
    expect(err.message).toMatch(/self[- ]signed|unable to (get|verify)|certificate/i);
  });

  it('a server name the certificate does not carry is refused; one it carries (DNS:localhost) is accepted', async () => {
    const base = { url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}` };
    const err = await connectError({ ...base, tls: { ca: tls.pki.pem.ca, servername: 'wrong.example' } });
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as CertificateError).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(err.message).toMatch(/wrong\.example/);
    expect(err.message).toMatch(/does not match|altnames/i);
    await withConnection({ ...base, tls: { ca: tls.pki.pem.ca, servername: 'localhost' } }, async (conn) =>
      expect(conn.isOpen).toBe(true),
    );
  });

  it('an AmqpSession whose only URL serves a certificate it cannot verify fails once with CertificateError: recoveryFailed, no retry', async () => {
    const attempts = jest.spyOn(AmqpConnection, 'connectOnce');
    const session = new AmqpSession({
      url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}`,
      tls: { ca: tls.pki.pem.otherCa },
      connectionAttempts: 3,
      retryDelay: 0.005,
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      logger: silent,
    });
    try {
      const failed: Error[] = [];
      session.on('recoveryFailed', (_role, e) => failed.push(e));
      const err = await rejection(session.connect());
      expect(err).toBeInstanceOf(CertificateError);
      expect(err.message).toContain('server certificate refused');
      // A retry would come within 10 ms: a window of 50 times that shows none.
      const retried = new Promise<string>((resolve) => session.once('reconnecting', (role) => resolve(role)));
      const quiet = new Promise<string>((resolve) => setTimeout(() => resolve('none'), 500));
      expect(await Promise.race([retried, quiet])).toBe('none');
      expect(attempts).toHaveBeenCalledTimes(2); // one per connection (publisher, consumer), no second round
      expect(failed).toHaveLength(2);
      for (const e of failed) expect(e).toBeInstanceOf(CertificateError);
    } finally {
      attempts.mockRestore();
      await session.close();
    }
  });

  it('one URL with a refused certificate does not keep a session from the next URL of the round', async () => {
    const session = new AmqpSession({
      url: [`amqps://guest:guest@127.0.0.1:${tls.tlsPort}`, tls.node.url],
      tls: { ca: tls.pki.pem.otherCa },
      logger: silent,
    });
    try {
      await session.connect();
      const queue = uniqueName('tls-fallback');
      await session.queueDeclare(queue, { durable: false, autoDelete: true });
      await session.publish('', queue, Buffer.from('via the plain listener'));
      await session.queueDelete(queue);
    } finally {
      await session.close();
    }
  });

  it('verify=false connects without a CA', async () => {
    await withConnection({ url: `amqps://guest:guest@127.0.0.1:${tls.tlsPort}?verify=false` }, async (conn) =>
      expect(conn.isOpen).toBe(true),
    );
  });
});

describe('TLS node: EXTERNAL (client certificate)', () => {
  it('EXTERNAL with a client certificate logs in as the certificate CN', async () => {
    const connectionName = uniqueName('tls-external');
    await withConnection(
      {
        url: `${tls.tlsUrl}`,
        tls: { ca: tls.pki.pem.ca, ...clientCert() },
        mechanisms: ['EXTERNAL'],
        connectionName,
      },
      async (conn) => {
        expect(conn.isOpen).toBe(true);
        expect(await brokerView(connectionName)).toEqual({ user: CLIENT_CN, auth: 'EXTERNAL', ssl: true });
      },
    );
  });

  it('EXTERNAL from a URL alone: auth_mechanism=EXTERNAL and ca/cert/key file paths', async () => {
    const f = tls.pki.files;
    const q = [
      'auth_mechanism=EXTERNAL',
      `ca=${encodeURIComponent(f.ca)}`,
      `cert=${encodeURIComponent(f.clientCert)}`,
      `key=${encodeURIComponent(f.clientKey)}`,
    ].join('&');
    const connectionName = uniqueName('tls-external-url');
    await withConnection({ url: `${tls.tlsUrl}?${q}`, connectionName }, async () => {
      expect((await brokerView(connectionName)).user).toBe(CLIENT_CN);
    });
  });

  it('EXTERNAL with an encrypted client key and its passphrase', async () => {
    const connectionName = uniqueName('tls-external-enc');
    await withConnection(
      {
        url: tls.tlsUrl,
        tls: {
          ca: tls.pki.pem.ca,
          cert: tls.pki.pem.clientCert,
          key: tls.pki.pem.clientKeyEncrypted,
          passphrase: KEY_PASSPHRASE,
        },
        mechanisms: ['EXTERNAL'],
        connectionName,
      },
      async () => {
        expect(await brokerView(connectionName)).toEqual({ user: CLIENT_CN, auth: 'EXTERNAL', ssl: true });
      },
    );
  });

  it('EXTERNAL without a client certificate is an AuthenticationError (403)', async () => {
    const err = await connectError({ url: tls.tlsUrl, tls: { ca: tls.pki.pem.ca }, mechanisms: ['EXTERNAL'] });
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as unknown as AuthenticationError).replyCode).toBe(ReplyCode.ACCESS_REFUSED);
    expect(err.message).toContain(
      `EXTERNAL login (no client certificate) to amqps://127.0.0.1:${tls.tlsPort}/ refused`,
    );
  });

  it('EXTERNAL with a certificate whose CN has no user is an AuthenticationError (403) naming the mechanism and certificate, not the URL user', async () => {
    const err = await connectError({
      url: tls.tlsUrl,
      tls: { ca: tls.pki.pem.ca, cert: tls.pki.pem.unknownCert, key: tls.pki.pem.unknownKey },
      mechanisms: ['EXTERNAL'],
    });
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as unknown as AuthenticationError).replyCode).toBe(ReplyCode.ACCESS_REFUSED);
    // The broker does not say which subject it refused (its log does); the error says how we logged in.
    expect(err.message).toMatch(/EXTERNAL/);
    expect(err.message).toContain(`(client certificate ${UNKNOWN_CN})`);
    // EXTERNAL logs in as the certificate's CN: the URL's default username is not who was refused.
    expect(err.message).not.toContain('guest@');
  });

  it('an AmqpSession refused by EXTERNAL fails once: recoveryFailed once per connection, connect() rejects, no retry', async () => {
    const attempts = jest.spyOn(AmqpConnection, 'connectOnce');
    const session = new AmqpSession({
      url: tls.tlsUrl,
      tls: { ca: tls.pki.pem.ca, cert: tls.pki.pem.unknownCert, key: tls.pki.pem.unknownKey },
      mechanisms: ['EXTERNAL'],
      reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      logger: silent,
    });
    try {
      let reconnecting = 0;
      session.on('reconnecting', () => reconnecting++);
      const failed: Array<[string, Error]> = [];
      session.on('recoveryFailed', (role, e) => failed.push([role, e]));
      const err = await rejection(session.connect());
      expect(err).toBeInstanceOf(AuthenticationError);
      expect((err as unknown as AuthenticationError).replyCode).toBe(ReplyCode.ACCESS_REFUSED);
      // A retry would come within 10 ms (the backoff above): a window of 50 times that shows none.
      const retried = new Promise<string>((resolve) => session.once('reconnecting', (role) => resolve(role)));
      const quiet = new Promise<string>((resolve) => setTimeout(() => resolve('none'), 500));
      expect(await Promise.race([retried, quiet])).toBe('none');
      expect(reconnecting).toBe(0);
      expect(attempts).toHaveBeenCalledTimes(2); // one per connection (publisher, consumer)
      expect(failed.map(([role]) => role).sort()).toEqual(['consumer', 'publisher']);
      expect(failed.every(([, e]) => e instanceof AuthenticationError)).toBe(true);
    } finally {
      attempts.mockRestore();
      await session.close();
    }
  });
});

describe('TLS node: sessions and Nest over TLS + EXTERNAL', () => {
  const external = (): { url: string; tls: { ca: string; cert: string; key: string }; mechanisms: ['EXTERNAL'] } => ({
    url: tls.tlsUrl,
    tls: { ca: tls.pki.pem.ca, ...clientCert() },
    mechanisms: ['EXTERNAL'],
  });

  it('an AmqpSession publishes (confirmed) and consumes over TLS with EXTERNAL', async () => {
    const session = new AmqpSession({ ...external(), logger: silent });
    try {
      await session.connect();
      const q = uniqueName('tls-session');
      await session.queueDeclare(q, { durable: false, autoDelete: true });
      const got = deferred<SessionMessage>();
      await session.consume(q, (m) => {
        m.ack();
        got.resolve(m);
      });
      await session.publish('', q, 'over tls');
      const m = await got.promise;
      expect(m.body.toString()).toBe('over tls');
    } finally {
      await session.close();
    }
  });

  it('a Nest microservice and client exchange an event over TLS with EXTERNAL', async () => {
    const queue = uniqueName('tls-nest');
    const exchange = uniqueName('tls-nest-x');
    const received = new Recorder<unknown>();
    @AmqpController({
      queue: { name: queue, durable: false, autoDelete: true },
      exchange: { name: exchange, type: 'topic', durable: false, autoDelete: true },
    })
    class TlsController {
      @EventPattern('tls.hello')
      hello(@Payload() body: unknown) {
        received.push(body);
      }
    }
    const apps: Array<{ close(): Promise<unknown> }> = [];
    try {
      const { app } = await startMicroservice({ controllers: [TlsController] }, { ...external(), logger: silent });
      apps.push(app);
      const client = new AmqpClient({ ...external(), exchange, logger: silent });
      apps.push(client);
      await firstValueFrom(client.emit('tls.hello', { over: 'tls' }));
      expect(await received.waitFor(1)).toEqual([{ over: 'tls' }]);
    } finally {
      await closeAll(apps);
    }
  });
});
