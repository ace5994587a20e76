import { Logger } from '@nestjs/common';
import { AmqpSession, type SessionRole } from '../../lib/amqp';
import { AmqpClient, AmqpServer } from '../../lib/nest';
import { fakeServersPerTest } from '../support/fake-amqp-server';

Logger.overrideLogger(false);

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const fakeServer = fakeServersPerTest();

/** A broker that lets everyone in and answers every method. */
function broker(): ReturnType<typeof fakeServer> {
  return fakeServer(async (peer) => {
    await peer.handshake();
    peer.autoReply();
  });
}

function listen(server: AmqpServer): Promise<void> {
  return new Promise((resolve, reject) => {
    void server.listen((err) => (err === undefined ? resolve() : reject(err as Error)));
  });
}

describe('on() before the session exists, as with Nest’s own transports', () => {
  const closing: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c.close();
  });

  it('AmqpServer.on() before listen() waits, then hears the session connect', async () => {
    const amqp = await broker();
    const server = new AmqpServer({ url: amqp.url(), logger: silent });
    closing.push(server);
    const connected: SessionRole[] = [];

    server.on('connected', (role: SessionRole) => connected.push(role));
    await listen(server);

    expect(connected.sort()).toEqual(['consumer', 'publisher']);
  });

  it('AmqpClient.on() before connect() waits, then hears the session connect', async () => {
    const amqp = await broker();
    const client = new AmqpClient({ url: amqp.url(), logger: silent });
    closing.push(client);
    const connected: SessionRole[] = [];

    client.on('connected', (role: SessionRole) => connected.push(role));
    await client.connect();

    expect(connected.sort()).toEqual(['consumer', 'publisher']);
  });

  it('a server that listens again after a failed start hears the new session too', async () => {
    // Nothing listens on port 1: the first start fails; the second goes to a broker.
    const amqp = await broker();
    const options = { url: 'amqp://127.0.0.1:1', startupTimeout: 200, logger: silent };
    const server = new AmqpServer(options);
    closing.push(server);
    const connected: SessionRole[] = [];
    server.on('connected', (role: SessionRole) => connected.push(role));

    await expect(listen(server)).rejects.toThrow(/could not connect/);
    options.url = amqp.url();
    await listen(server);

    expect(connected.sort()).toEqual(['consumer', 'publisher']);
  });

  it('a client that connects again after a failed start connects a new session, and its listeners hear it', async () => {
    const amqp = await broker();
    const options = { url: 'amqp://127.0.0.1:1', startupTimeout: 200, logger: silent };
    const client = new AmqpClient(options);
    closing.push(client);
    const connected: SessionRole[] = [];
    client.on('connected', (role: SessionRole) => connected.push(role));

    await expect(client.connect()).rejects.toThrow(/could not connect/);
    options.url = amqp.url();
    const session = await client.connect();

    expect(session.isReady).toBe(true);
    expect(client.toJSON().session).toMatchObject({
      state: 'ready',
      endpoints: [`amqp://guest@127.0.0.1:${amqp.port}/`],
    });
    expect(connected.sort()).toEqual(['consumer', 'publisher']);
  });

  it("a server's and a client's listeners leave a shared session when they close", async () => {
    const amqp = await broker();
    const session = new AmqpSession({ url: amqp.url(), logger: silent });
    closing.push(session);
    const server = new AmqpServer({ session, logger: silent });
    const client = new AmqpClient({ session, logger: silent });
    const heard: string[] = [];
    server.on('connected', () => heard.push('server'));
    client.on('connected', () => heard.push('client'));
    const before = session.listenerCount('connected');

    await server.close();
    await client.close();

    expect(session.listenerCount('connected')).toBe(before - 2);
    await session.connect();
    expect(heard).toEqual([]);
  });
});
