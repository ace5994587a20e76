import { EventEmitter, once } from 'node:events';
import * as net from 'node:net';

/** Bytes a stalled direction reads and holds before it pauses its socket, so the sender then sees TCP backpressure. */
const HOLD_LIMIT = 64 * 1024;

export interface TcpProxyTarget {
  host?: string;
  port?: number;
  /** Clock for the pair records (ms, monotonic). Default performance.now(). */
  clock?: () => number;
}

/** One proxied connection as the proxy saw it (times from the proxy's clock). */
export interface PairRecord {
  id: number;
  openedAt: number;
  /** The proxy's local port towards the broker: the broker lists it as the connection's peer_port. */
  upstreamPort?: number;
  closedAt?: number;
}

/** One direction of a proxied connection: bytes read from `from` are written to `to`. */
class Direction {
  readonly held: Buffer[] = [];
  heldBytes = 0;
  /** `from` sent FIN while stalled: end `to` once the held bytes are flushed. */
  endPending = false;
  /** `to` asked us to wait for its 'drain'. */
  waitingDrain = false;

  constructor(
    readonly from: net.Socket,
    readonly to: net.Socket,
    private readonly proxy: TcpProxy,
    private readonly pair: Pair,
  ) {
    from.on('data', (chunk: Buffer) => this.onData(chunk));
    from.on('end', () => this.onEnd());
    to.on('drain', () => {
      this.waitingDrain = false;
      if (!this.stalled) from.resume();
    });
  }

  private get stalled(): boolean {
    return this.proxy.stalled || this.pair.stalled;
  }

  private onData(chunk: Buffer): void {
    if (this.stalled) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes >= HOLD_LIMIT) this.from.pause();
      this.proxy.emit('held', chunk.length);
      return;
    }
    this.write(chunk);
  }

  private write(chunk: Buffer): void {
    if (this.to.destroyed) return;
    if (!this.to.write(chunk)) {
      this.waitingDrain = true;
      this.from.pause();
    }
  }

  private onEnd(): void {
    if (this.stalled) this.endPending = true;
    else if (!this.to.destroyed) this.to.end();
  }

  resume(): void {
    const chunks = this.held.splice(0);
    this.heldBytes = 0;
    for (const chunk of chunks) this.write(chunk);
    if (this.endPending) {
      this.endPending = false;
      if (!this.to.destroyed) this.to.end();
    }
    if (!this.waitingDrain) this.from.resume();
  }
}

class Pair {
  /** Stalled on its own (stallExisting), whatever the proxy does. */
  stalled = false;
  private readonly up: Direction;
  private readonly down: Direction;

  constructor(
    readonly client: net.Socket,
    readonly server: net.Socket,
    proxy: TcpProxy,
    readonly record: PairRecord,
  ) {
    this.up = new Direction(client, server, proxy, this);
    this.down = new Direction(server, client, proxy, this);
  }

  get heldBytes(): number {
    return this.up.heldBytes + this.down.heldBytes;
  }

  resume(): void {
    this.up.resume();
    this.down.resume();
  }

  destroy(): void {
    this.client.destroy();
    this.server.destroy();
  }
}

/**
 * A TCP proxy for fault tests: listens on 127.0.0.1 (random port) and forwards every accepted connection to a
 * target (default 127.0.0.1:5672). It can stall traffic (both directions, sockets stay open) on every connection or
 * only on the current ones, cut every current connection, and refuse new ones; every connection is recorded
 * (`pairsLog`: opened, closed, its upstream port). Event based: no timers.
 *
 * Events: 'connection' (after a pair is set up, with the new connectionCount), 'disconnect' (a pair went away),
 * 'refused' (a connection was refused), 'held' (bytes read while stalled and held back, with the chunk length).
 */
export class TcpProxy extends EventEmitter {
  readonly host: string;
  readonly targetHost: string;
  readonly targetPort: number;
  /** True between stall() and resume(). */
  stalled = false;
  /** Every connection accepted, in order, with when it opened and closed. */
  readonly pairsLog: PairRecord[] = [];
  private readonly clock: () => number;
  private nextId = 1;
  private refusing = false;
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  private readonly sockets = new Set<net.Socket>();
  private listeningPort = 0;

  constructor(target: TcpProxyTarget | number = {}, targetHost?: string) {
    super();
    const t: TcpProxyTarget = typeof target === 'number' ? { port: target, host: targetHost } : target;
    this.targetHost = t.host ?? '127.0.0.1';
    this.targetPort = t.port ?? 5672;
    this.clock = t.clock ?? (() => performance.now());
    this.host = '127.0.0.1';
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  /** Starts listening; resolves with the proxy's port. */
  async start(): Promise<number> {
    if (this.listeningPort) return this.listeningPort;
    this.server.listen(0, this.host);
    await once(this.server, 'listening');
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('TcpProxy: unexpected server address');
    this.listeningPort = address.port;
    return this.listeningPort;
  }

  get port(): number {
    if (!this.listeningPort) throw new Error('TcpProxy: start() first');
    return this.listeningPort;
  }

  /** An amqp:// URL that reaches the target through this proxy (default vhost). `query` may start with '?'. */
  url(user = 'guest', pass = 'guest', query = ''): string {
    const q = query.replace(/^\?/, '');
    return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${this.host}:${this.port}${q ? `?${q}` : ''}`;
  }

  /** Number of live client/server socket pairs. */
  get connectionCount(): number {
    return this.pairs.size;
  }

  /** Bytes read while stalled and not yet forwarded, both directions, all pairs. */
  get heldBytes(): number {
    let total = 0;
    for (const pair of this.pairs) total += pair.heldBytes;
    return total;
  }

  /** Stops forwarding in both directions on every pair (and on pairs accepted later); sockets stay open. */
  stall(): void {
    this.stalled = true;
  }

  /**
   * Stops forwarding on the connections that exist now (a half-dead link that only heartbeats can detect); connections
   * opened later flow normally, so a client that notices can reconnect at once. Returns how many were stalled.
   */
  stallExisting(): number {
    for (const pair of this.pairs) pair.stalled = true;
    return this.pairs.size;
  }

  /** Forwards everything held back by stall() or stallExisting(), in order, and carries on forwarding. */
  resume(): void {
    this.stalled = false;
    for (const pair of this.pairs) {
      pair.stalled = false;
      pair.resume();
    }
  }

  /** Destroys every current client/server socket pair; returns how many. New connections are still accepted. */
  cut(): number {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) pair.destroy();
    return n;
  }

  /** While on, new connections are destroyed as soon as they are accepted. Existing pairs are untouched. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Resolves on the next accepted (and forwarded) connection. */
  async nextConnection(): Promise<void> {
    await once(this, 'connection');
  }

  /** Stops listening and destroys every socket. */
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
    // Errors (ECONNRESET, EPIPE, ECONNREFUSED) just end the pair; the peer socket is destroyed on 'close'.
    socket.on('error', () => undefined);
  }

  private accept(client: net.Socket): void {
    this.track(client);
    if (this.refusing) {
      client.destroy();
      this.emit('refused');
      return;
    }
    client.setNoDelay(true);
    const server = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    this.track(server);
    server.setNoDelay(true);
    const record: PairRecord = { id: this.nextId++, openedAt: this.clock() };
    server.once('connect', () => (record.upstreamPort = server.localPort));
    this.pairsLog.push(record);
    const pair = new Pair(client, server, this, record);
    this.pairs.add(pair);
    let gone = false;
    const onClose = (socket: net.Socket, hadError: boolean): void => {
      // A clean close after both FINs leaves the peer to flush what it still has; anything else tears it down.
      const other = socket === client ? server : client;
      if (hadError || !other.writableEnded) other.destroy();
      if (gone) return;
      gone = true;
      record.closedAt = this.clock();
      this.pairs.delete(pair);
      this.emit('disconnect', this.pairs.size);
    };
    client.once('close', (hadError: boolean) => onClose(client, hadError));
    server.once('close', (hadError: boolean) => onClose(server, hadError));
    this.emit('connection', this.pairs.size);
  }
}
