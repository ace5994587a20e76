import { once } from 'node:events';
import * as net from 'node:net';
import { TcpProxy } from '../support/tcp-proxy';

/** A local echo server that also records what it received and keeps its sockets, so a test can talk first. */
class EchoServer {
  readonly server: net.Server;
  readonly sockets: net.Socket[] = [];
  received = '';
  private readonly connectionWaiters: Array<(socket: net.Socket) => void> = [];

  constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.push(socket);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        this.received += chunk.toString();
        socket.write(chunk);
      });
      for (const waiter of this.connectionWaiters.splice(0)) waiter(socket);
    });
  }

  async start(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address() as net.AddressInfo;
    return address.port;
  }

  nextSocket(): Promise<net.Socket> {
    return new Promise((resolve) => this.connectionWaiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A client socket that accumulates everything it reads. */
class Client {
  readonly socket: net.Socket;
  received = '';
  private waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString();
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  /** Resolves once the received text contains `text`. */
  async waitFor(text: string): Promise<void> {
    while (!this.received.includes(text)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async closed(): Promise<void> {
    if (this.socket.closed) return;
    await once(this.socket, 'close');
  }
}

/** Resolves once the proxy has seen `n` pairs close. */
async function waitUntilClosed(proxy: TcpProxy, n: number): Promise<void> {
  while (proxy.pairsLog.filter((p) => p.closedAt !== undefined).length < n) await once(proxy, 'disconnect');
}

describe('TcpProxy', () => {
  let echo: EchoServer;
  let proxy: TcpProxy;
  let proxyPort: number;
  const clients: Client[] = [];

  const connect = (): Client => {
    const client = new Client(proxyPort);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    echo = new EchoServer();
    const echoPort = await echo.start();
    proxy = new TcpProxy({ port: echoPort });
    proxyPort = await proxy.start();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await proxy.close();
    await echo.close();
  });

  it('forwards both ways and builds URLs', async () => {
    const accepted = proxy.nextConnection();
    const client = connect();
    await accepted;
    expect(proxy.connectionCount).toBe(1);
    client.socket.write('hello');
    await client.waitFor('hello');
    expect(echo.received).toBe('hello');
    expect(proxy.url()).toBe(`amqp://guest:guest@127.0.0.1:${proxyPort}`);
    expect(proxy.url('u@x', 'p/w', '?heartbeat=1')).toBe(`amqp://u%40x:p%2Fw@127.0.0.1:${proxyPort}?heartbeat=1`);
    expect(proxy.url('guest', 'guest', 'heartbeat=1')).toBe(`amqp://guest:guest@127.0.0.1:${proxyPort}?heartbeat=1`);
  });

  it('stall holds bytes in both directions until resume, keeping sockets open', async () => {
    const serverSide = echo.nextSocket();
    const client = connect();
    const server = await serverSide;
    client.socket.write('before');
    await client.waitFor('before');

    proxy.stall();
    // client -> server: the proxy reads the bytes but does not pass them on.
    let held = once(proxy, 'held');
    client.socket.write('up');
    await held;
    expect(echo.received).toBe('before');
    // server -> client: same.
    held = once(proxy, 'held');
    server.write('down');
    await held;
    expect(client.received).toBe('before');
    expect(proxy.heldBytes).toBe(6);
    expect(client.socket.destroyed).toBe(false);
    expect(server.destroyed).toBe(false);
    expect(proxy.connectionCount).toBe(1);

    // A connection opened during the stall is stalled too.
    const lateServerSide = echo.nextSocket();
    const late = connect();
    await lateServerSide;
    held = once(proxy, 'held');
    late.socket.write('late');
    await held;
    expect(echo.received).toBe('before');

    proxy.resume();
    await client.waitFor('down');
    await client.waitFor('up');
    await late.waitFor('late');
    expect(client.received).toBe('beforedownup');
    expect(echo.received).toContain('up');
    expect(echo.received).toContain('late');
    expect(proxy.heldBytes).toBe(0);
  });

  it('stallExisting holds only the current connections; later ones flow; every pair is recorded', async () => {
    const first = connect();
    await proxy.nextConnection();
    first.socket.write('a');
    await first.waitFor('a');

    expect(proxy.stallExisting()).toBe(1);
    const held = once(proxy, 'held');
    first.socket.write('b');
    await held;
    expect(echo.received).toBe('a');

    // A connection opened during the stall is not held.
    const second = connect();
    second.socket.write('c');
    await second.waitFor('c');

    proxy.resume();
    await first.waitFor('ab');
    expect(echo.received).toBe('acb');

    first.socket.destroy();
    await waitUntilClosed(proxy, 1);
    const [one, two] = proxy.pairsLog;
    expect(proxy.pairsLog).toHaveLength(2);
    expect(one.id).toBe(1);
    expect(two.openedAt).toBeGreaterThanOrEqual(one.openedAt);
    expect(one.closedAt).toBeGreaterThanOrEqual(one.openedAt);
    expect(two.closedAt).toBeUndefined();
    expect(one.upstreamPort).toEqual(expect.any(Number));
  });

  it('a FIN received while stalled is forwarded after resume, after the held bytes', async () => {
    const serverSide = echo.nextSocket();
    const client = connect();
    const server = await serverSide;
    proxy.stall();
    const held = once(proxy, 'held');
    server.end('bye');
    await held;
    expect(client.socket.readableEnded).toBe(false);
    const ended = once(client.socket, 'end');
    proxy.resume();
    await ended;
    expect(client.received).toBe('bye');
  });

  it('cut destroys current pairs but keeps accepting', async () => {
    const serverSide = echo.nextSocket();
    const client = connect();
    const server = await serverSide;
    client.socket.write('x');
    await client.waitFor('x');

    const serverClosed = once(server, 'close');
    proxy.cut();
    await client.closed();
    await serverClosed;
    expect(proxy.connectionCount).toBe(0);

    const again = connect();
    again.socket.write('again');
    await again.waitFor('again');
    expect(proxy.connectionCount).toBe(1);
  });

  it('cut also ends a stalled pair', async () => {
    const accepted = proxy.nextConnection();
    const client = connect();
    await accepted;
    proxy.stall();
    proxy.cut();
    await client.closed();
    expect(proxy.connectionCount).toBe(0);
    proxy.resume();
  });

  it('refuse destroys new connections until turned off, leaving existing ones alone', async () => {
    const existing = connect();
    existing.socket.write('one');
    await existing.waitFor('one');

    proxy.refuse(true);
    const refused = once(proxy, 'refused');
    const rejected = connect();
    await refused;
    await rejected.closed();
    expect(rejected.received).toBe('');
    expect(proxy.connectionCount).toBe(1);
    expect(echo.sockets).toHaveLength(1);

    existing.socket.write('two');
    await existing.waitFor('two');

    proxy.refuse(false);
    const next = connect();
    next.socket.write('three');
    await next.waitFor('three');
    expect(proxy.connectionCount).toBe(2);
  });

  it('a dead target closes the client side', async () => {
    await echo.close();
    const client = connect();
    await client.closed();
    expect(proxy.connectionCount).toBe(0);
    echo = new EchoServer();
    await echo.start();
  });

  it('close() ends everything and stops listening', async () => {
    const client = connect();
    client.socket.write('a');
    await client.waitFor('a');
    await proxy.close();
    await client.closed();
    expect(proxy.connectionCount).toBe(0);
    const late = net.connect({ host: '127.0.0.1', port: proxyPort });
    const [error] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
  });
});
