import { EventEmitter, once } from 'node:events';
import * as net from 'node:net';
import { nowMs } from './protocol';

/**
 * A fault-injection TCP proxy for the recovery bench, after test/support/tcp-proxy.ts but with two differences that
 * the scenarios need:
 *  - stall() freezes the connections that exist now (both directions, sockets stay open, reads paused so the sender
 *    sees TCP backpressure) while connections opened later flow normally. That models a half-dead link that only
 *    heartbeats can detect and lets a client that detects it reconnect at once; TcpProxy.stall() also holds new
 *    connections, so no client could come back before the stall ends.
 *  - every pair records when it was opened and closed (nowMs()), so the bench knows exactly when each of a library's
 *    connections went away.
 */

export interface PairRecord {
  id: number;
  openedAt: number;
  /** The proxy's local port towards the broker: the broker lists it as the connection's peer_port. */
  upstreamPort?: number;
  closedAt?: number;
}

class Pair {
  stalled = false;
  readonly record: PairRecord;

  constructor(
    id: number,
    readonly client: net.Socket,
    readonly server: net.Socket,
  ) {
    this.record = { id, openedAt: nowMs() };
    this.pipe(client, server);
    this.pipe(server, client);
    server.once('connect', () => (this.record.upstreamPort = server.localPort));
  }

  private pipe(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed) return;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (!this.stalled) from.resume();
        });
      }
    });
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
  }

  stall(): void {
    this.stalled = true;
    this.client.pause();
    this.server.pause();
  }

  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    if (!this.server.writableNeedDrain) this.client.resume();
    if (!this.client.writableNeedDrain) this.server.resume();
  }

  destroy(): void {
    this.client.destroy();
    this.server.destroy();
  }
}

export class FaultProxy extends EventEmitter {
  readonly host = '127.0.0.1';
  readonly pairsLog: PairRecord[] = [];
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  private readonly sockets = new Set<net.Socket>();
  private listeningPort = 0;
  private nextId = 1;

  constructor(
    private readonly targetHost = '127.0.0.1',
    private readonly targetPort = 5672,
  ) {
    super();
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  async start(): Promise<number> {
    this.server.listen(0, this.host);
    await once(this.server, 'listening');
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('FaultProxy: unexpected server address');
    this.listeningPort = address.port;
    return this.listeningPort;
  }

  /** amqp://guest:guest@127.0.0.1:<port>, plus the query string, if any. */
  url(user = 'guest', pass = 'guest', query = ''): string {
    if (!this.listeningPort) throw new Error('FaultProxy: start() first');
    const q = query.replace(/^\?/, '');
    return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${this.host}:${this.listeningPort}${q ? `?${q}` : ''}`;
  }

  get connectionCount(): number {
    return this.pairs.size;
  }

  /** Freeze every current connection; returns how many. Later connections are not affected. */
  stallExisting(): number {
    for (const pair of this.pairs) pair.stall();
    return this.pairs.size;
  }

  /** Unfreeze every stalled connection (whatever the peers queued meanwhile flows on). */
  resumeAll(): void {
    for (const pair of this.pairs) pair.resume();
  }

  /** Destroy every current connection; returns how many. New connections are accepted. */
  cut(): number {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) pair.destroy();
    return n;
  }

  async close(): Promise<void> {
    const closed = this.server.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    this.cut();
    await closed;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  private accept(client: net.Socket): void {
    this.track(client);
    client.setNoDelay(true);
    const server = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    this.track(server);
    server.setNoDelay(true);
    const pair = new Pair(this.nextId++, client, server);
    this.pairs.add(pair);
    this.pairsLog.push(pair.record);
    let gone = false;
    const onClose = (socket: net.Socket, hadError: boolean): void => {
      const other = socket === client ? server : client;
      if (hadError || !other.writableEnded) other.destroy();
      if (gone) return;
      gone = true;
      pair.record.closedAt = nowMs();
      this.pairs.delete(pair);
      this.emit('disconnect', pair.record);
    };
    client.once('close', (hadError: boolean) => onClose(client, hadError));
    server.once('close', (hadError: boolean) => onClose(server, hadError));
    this.emit('connection', pair.record);
  }
}
