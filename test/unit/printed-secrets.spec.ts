import { Logger } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { inspect } from 'node:util';
import { AmqpConnection, AmqpSession, type SessionOptions } from '../../lib/amqp';
import { AmqpClient, AmqpHealthIndicator, AmqpModule, AmqpServer } from '../../lib/nest';
import { getAmqpLifecycleToken } from '../../lib/nest/amqp.constants';
import { AmqpConnectionHost } from '../../lib/nest/amqp.connection-host';
import { FakeAmqpServer } from '../support/fake-amqp-server';
import { KEY_PASSPHRASE, makeTlsFixtures, pemBodyLines, type TlsFixtures } from '../support/tls-fixtures';

Logger.overrideLogger(false);

/** The password is `s3cr@et`; the URL carries it percent-encoded. Port 1: nothing listens, nothing connects. */
const PASSWORD = 's3cr@et';
const URL = 'amqps://user:s3cr%40et@127.0.0.1:1';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let fx: TlsFixtures;
let sentinels: string[];

beforeAll(() => {
  fx = makeTlsFixtures();
  sentinels = [
    PASSWORD,
    's3cr%40et',
    KEY_PASSPHRASE,
    'PRIVATE KEY',
    ...pemBodyLines(fx.pem.encryptedKey),
    // The key as JSON would show a Buffer: its first bytes.
    Buffer.from(fx.pem.encryptedKey).subarray(0, 12).toJSON().data.join(','),
  ];
});

afterAll(() => fx.remove());

function options(): SessionOptions {
  return {
    url: URL,
    tls: { key: Buffer.from(fx.pem.encryptedKey), passphrase: KEY_PASSPHRASE, cert: fx.pem.cert, ca: fx.pem.ca },
    logger: silent,
  };
}

/** Every way the object can be printed: deep inspect (hidden properties too), JSON, and nested in both. */
function printed(value: unknown): string[] {
  return [
    inspect(value, { depth: 10, showHidden: true }),
    inspect({ nested: [value] }, { depth: Infinity }),
    JSON.stringify(value),
    JSON.stringify({ nested: [value] }),
  ];
}

function expectNoSecrets(value: unknown): void {
  for (const text of printed(value)) {
    for (const sentinel of sentinels) expect(text).not.toContain(sentinel);
  }
}

describe('printed objects hold no password, private key or passphrase', () => {
  const sessions: AmqpSession[] = [];
  const track = (s: AmqpSession): AmqpSession => (sessions.push(s), s);

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close().catch(() => undefined)));
  });

  it('AmqpSession shows its name, state and endpoints as describeEndpoint gives them', async () => {
    const session = track(new AmqpSession({ ...options(), name: 'orders' }));
    expectNoSecrets(session);
    expect(JSON.parse(JSON.stringify(session))).toEqual({
      name: 'orders',
      state: 'connecting',
      endpoints: ['amqps://user@127.0.0.1:1/'],
    });
    expect(inspect(session, { breakLength: Infinity })).toBe(
      "AmqpSession { name: 'orders', state: 'connecting', endpoints: [ 'amqps://user@127.0.0.1:1/' ] }",
    );
    await session.close();
    expect(session.toJSON().state).toBe('closed');
  });

  it('AmqpSession, once connected, and its AmqpConnection', async () => {
    const server = await FakeAmqpServer.start(async (peer) => {
      await peer.handshake();
      peer.autoReply();
    });
    try {
      const url = `amqp://user:s3cr%40et@127.0.0.1:${server.port}`;
      const session = track(new AmqpSession({ url, logger: silent }));
      await session.connect();
      expect(session.toJSON().state).toBe('ready');
      expectNoSecrets(session);

      const connection = await AmqpConnection.connect({ url, logger: silent });
      try {
        expect(inspect(connection, { depth: 10, showHidden: true })).not.toContain(PASSWORD);
        expect(inspect(connection.endpoint, { showHidden: true })).not.toContain(PASSWORD);
        expect(JSON.stringify(connection.endpoint)).not.toContain(PASSWORD);
        expect(JSON.stringify(connection.options)).not.toContain(PASSWORD);
      } finally {
        await connection.close();
      }
      await session.close();
    } finally {
      await server.close();
    }
  });

  it('AmqpConnection, Channel, RecoverableChannel and a session consumer print as JSON: state and endpoint only', async () => {
    const server = await FakeAmqpServer.start(async (peer) => {
      await peer.handshake();
      peer.autoReply();
    });
    try {
      const url = `amqp://user:s3cr%40et@127.0.0.1:${server.port}`;
      const endpoint = `amqp://user@127.0.0.1:${server.port}/`;
      const connection = await AmqpConnection.connect({ url, logger: silent });
      try {
        const channel = await connection.channel();
        expectNoSecrets(connection);
        expectNoSecrets(channel);
        expect(JSON.parse(JSON.stringify(connection))).toEqual({
          endpoint,
          open: true,
          blocked: false,
          heartbeat: connection.heartbeat,
          frameMax: connection.frameMax,
          channelMax: connection.channelMax,
          channels: 1,
        });
        expect(JSON.parse(JSON.stringify({ channel }))).toEqual({
          channel: { id: channel.id, state: 'open', confirmMode: false, unconfirmed: 0, connection: endpoint },
        });
      } finally {
        await connection.close();
      }

      const session = track(new AmqpSession({ url, logger: silent }));
      await session.connect();
      const recoverable = session.recoverableChannel('publisher', () => Promise.resolve());
      const channel = await recoverable.channel();
      const consumer = await session.consume('orders', () => undefined);
      expectNoSecrets(recoverable);
      expectNoSecrets(consumer);
      expect(JSON.parse(JSON.stringify(recoverable))).toEqual({
        entity: 'recoverable publisher channel',
        ready: true,
        closed: false,
        channel: channel.id,
      });
      expect(JSON.parse(JSON.stringify(consumer))).toEqual({
        queue: 'orders',
        consumerTag: consumer.consumerTag,
        ready: true,
        inFlight: 0,
        cancelled: false,
      });
      await session.close();
    } finally {
      await server.close();
    }
  });

  it('AmqpClient and AmqpServer with their own connection options', () => {
    const client = new AmqpClient(options());
    const server = new AmqpServer(options());
    expectNoSecrets(client);
    expectNoSecrets(server);
    expect(client.toJSON()).toEqual({ name: 'default', state: 'idle', session: null });
    expect(server.toJSON()).toEqual({ name: 'default', state: 'idle', session: null });
  });

  it('AmqpClient, AmqpServer and AmqpHealthIndicator sharing a session', () => {
    const session = track(new AmqpSession(options()));
    for (const provider of [
      new AmqpClient({ session }),
      new AmqpServer({ session }),
      new AmqpHealthIndicator(session),
    ]) {
      expectNoSecrets(provider);
      expect(JSON.stringify(provider)).toContain('amqps://user@127.0.0.1:1/');
    }
  });

  describe('the providers of AmqpModule', () => {
    let moduleRef: TestingModule;

    beforeAll(async () => {
      moduleRef = await Test.createTestingModule({
        imports: [AmqpModule.forRoot({ ...options(), startWithoutBroker: true })],
      }).compile();
    });

    afterAll(() => moduleRef.close());

    it.each<[string, () => unknown]>([
      ['AmqpSession', () => moduleRef.get(AmqpSession)],
      ['AmqpClient', () => moduleRef.get(AmqpClient)],
      ['AmqpServer', () => moduleRef.get(AmqpServer)],
      ['AmqpHealthIndicator', () => moduleRef.get(AmqpHealthIndicator)],
      ['AmqpConnectionHost', () => moduleRef.get<AmqpConnectionHost>(getAmqpLifecycleToken())],
    ])('%s', (_, get) => {
      expectNoSecrets(get());
    });
  });
});
