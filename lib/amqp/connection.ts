import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { inspect } from 'node:util';
import { Channel } from './channel';
import {
  AmqpError,
  AuthenticationError,
  BlockedTimeoutError,
  ClosedError,
  ConnectionError,
  ConnectionLostError,
  HeartbeatTimeoutError,
  ProtocolError,
  ReplyCode,
  TimeoutError,
  VhostError,
} from './errors';
import { Heartbeat } from './heartbeat';
import { consoleLogger, type Logger } from './logger';
import { DEFAULTS, type ConnectionOptionsInput, type Endpoint, type ResolvedConnectionOptions } from './options';
import type { FieldTable } from './protocol/field-table';
import { FrameParser, FRAME_HEARTBEAT, FRAME_METHOD } from './protocol/frame-parser';
import { FrameEncoder, HEARTBEAT_FRAME } from './protocol/frame-writer';
import { decodeMethod, methodName, type DecodedMethod } from './protocol/methods';
import type { MethodArgs, MethodName } from './protocol/spec.generated';
import { connectWithPolicy } from './reconnect-policy';
import { chooseMechanism } from './sasl';
import { openSocket } from './socket';
import { describeEndpoint, resolveConnectionOptions } from './url';

const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
/** Flush the write batch synchronously once it holds this much. */
const FLUSH_BYTES = 64 * 1024;
const VERSION = '0.1.0';

export interface ConnectionEvents {
  /** The connection is gone. `error` is undefined after an application `close()`. */
  close: [error: AmqpError | undefined];
  blocked: [reason: string];
  unblocked: [];
  /** The event loop was blocked for `ms` — longer than the heartbeat interval. */
  eventLoopBlocked: [ms: number];
}

export interface ConnectOptions extends ConnectionOptionsInput {
  logger?: Logger;
}

/**
 * One AMQP 0-9-1 connection: the socket, the handshake, heartbeats, flow control (blocked/unblocked)
 * and the channel table. Frames flow: socket → FrameParser → channel 0 (here) or a Channel.
 */
export class AmqpConnection extends EventEmitter<ConnectionEvents> {
  /** The broker's `server-properties` from connection.start. */
  serverProperties: FieldTable = {};
  /** Negotiated values (tune / tune-ok). */
  channelMax = 0;
  frameMax = 0;
  heartbeat = 0;
  readonly endpoint: Endpoint;
  readonly options: ResolvedConnectionOptions;
  readonly logger: Logger;
  /** @internal */
  readonly encoder: FrameEncoder;
  private readonly parser: FrameParser;
  private readonly channels = new Map<number, Channel>();
  private heartbeatTimer: Heartbeat | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The last pending run: its first view and the length it has grown to (made a wider view only at flush). */
  private tail: Buffer | null = null;
  private tailLength = 0;
  private flushScheduled = false;
  private ackChannels: Channel[] = [];
  private drainWaiters: Array<() => void> = [];
  private blockedReason: string | null = null;
  private unblockWaiters: Array<{ resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }> = [];
  private closed = false;
  private closing: Promise<void> | null = null;
  private closeError: AmqpError | undefined;
  private closeOkWaiter: (() => void) | null = null;
  private handshake: {
    resolve: (m: DecodedMethod) => void;
    reject: (e: Error) => void;
  } | null = null;

  private constructor(
    private readonly socket: net.Socket,
    endpoint: Endpoint,
    options: ResolvedConnectionOptions,
    logger: Logger,
  ) {
    super();
    this.endpoint = endpoint;
    this.options = options;
    this.logger = logger;
    this.encoder = new FrameEncoder(options.frameMax);
    // Until tune, accept frames up to our own limit.
    this.parser = new FrameParser(
      (type, channel, buf, start, end) => this.onFrame(type, channel, buf, start, end),
      options.frameMax,
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.lost(new ConnectionLostError(`socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.lost(new ConnectionLostError('socket closed by the peer')));
    socket.on('drain', () => this.onDrain());
  }

  /**
   * Connect: try each endpoint in order (or shuffled), the whole list `connectionAttempts` times with
   * `retryDelay` between rounds. Authentication and vhost failures are final and never retried.
   */
  static async connect(input: string | string[] | ConnectOptions = {}): Promise<AmqpConnection> {
    const options = resolveConnectionOptions(input);
    const logger = (typeof input === 'object' && !Array.isArray(input) && input.logger) || consoleLogger;
    return connectWithPolicy(options, logger, { maxRounds: options.connectionAttempts });
  }

  /** One endpoint, one try: TCP/TLS, then the AMQP handshake, all within handshakeTimeout. */
  static async connectOnce(
    endpoint: Endpoint,
    options: ResolvedConnectionOptions,
    logger: Logger = consoleLogger,
  ): Promise<AmqpConnection> {
    const deadline = Date.now() + options.handshakeTimeoutMs;
    const socket = await openSocket(endpoint, {
      connectionTimeoutMs: Math.min(options.connectionTimeoutMs, options.handshakeTimeoutMs),
      noDelay: options.noDelay,
      keepAlive: options.keepAlive,
    });
    const conn = new AmqpConnection(socket, endpoint, options, logger);
    const left = Math.max(1, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        conn.runHandshake(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new TimeoutError(
                  `AMQP handshake with ${describeEndpoint(endpoint)} timed out after ${options.handshakeTimeoutMs} ms`,
                  'handshake',
                  options.handshakeTimeoutMs,
                ),
              ),
            left,
          );
        }),
      ]);
    } catch (err) {
      conn.destroy(err as AmqpError);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return conn;
  }

  /** The broker's capabilities table (publisher_confirms, consumer_cancel_notify, ...). */
  get serverCapabilities(): FieldTable {
    const caps = this.serverProperties.capabilities;
    return caps && typeof caps === 'object' && !Array.isArray(caps) && !Buffer.isBuffer(caps)
      ? (caps as FieldTable)
      : {};
  }

  get isOpen(): boolean {
    return !this.closed && this.closing === null;
  }

  get isBlocked(): boolean {
    return this.blockedReason !== null;
  }

  /** Why the connection ended, once it has (undefined for an application close). */
  get closeReason(): AmqpError | undefined {
    return this.closeError;
  }

  /** Open a channel (numbers from 1, lowest free first, never above channel_max). */
  async channel(): Promise<Channel> {
    this.assertOpen();
    const id = this.allocateChannelId();
    const ch = new Channel(this, id);
    this.channels.set(id, ch);
    try {
      await ch.open();
    } catch (err) {
      this.channels.delete(id);
      throw err;
    }
    return ch;
  }

  /** connection.update-secret: refresh credentials (e.g. an OAuth token) on a live connection. */
  async updateSecret(newSecret: string, reason: string): Promise<void> {
    this.assertOpen();
    // One at a time: channel 0 has a single reply slot.
    while (this.updatingSecret) await this.updatingSecret.catch(() => undefined);
    this.assertOpen();
    this.updatingSecret = this.sendUpdateSecret(newSecret, reason);
    try {
      await this.updatingSecret;
    } finally {
      this.updatingSecret = null;
    }
  }

  private updatingSecret: Promise<void> | null = null;

  private async sendUpdateSecret(newSecret: string, reason: string): Promise<void> {
    const reply = this.expectOnChannel0('connection.update-secret-ok');
    this.sendMethod(0, 'connection.update-secret', { newSecret, reason });
    await withTimeout(reply, this.options.operationTimeoutMs, 'connection.update-secret');
  }

  /**
   * Graceful close: waits (bounded by operationTimeout) for each channel's pending synchronous
   * methods and unconfirmed publishes, then connection.close → close-ok, then the socket ends.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.closed) return Promise.resolve();
    this.closing = (async () => {
      const settle = Promise.all([...this.channels.values()].map((ch) => ch.settle()));
      await withTimeout(settle, this.options.operationTimeoutMs, 'close (settling channels)').catch(() => undefined);
      if (this.closed) return;
      const closeOk = new Promise<void>((resolve) => (this.closeOkWaiter = resolve));
      // Acks made before close() count: they leave ahead of connection.close.
      this.runDeferredAcks();
      this.sendMethod(0, 'connection.close', { replyCode: 200, replyText: 'Goodbye', classId: 0, methodId: 0 });
      this.flush();
      await withTimeout(closeOk, this.options.operationTimeoutMs, 'connection.close').catch(() => undefined);
      this.finish(undefined);
      this.socket.end();
    })();
    return this.closing;
  }

  [inspect.custom](): string {
    return `AmqpConnection { ${describeEndpoint(this.endpoint)}, open: ${this.isOpen} }`;
  }

  // ---- internal: used by Channel ----

  /** @internal Queue one encoded frame (or frame group) for writing. Returns true when the socket wants a drain. */
  send(data: Buffer | Buffer[]): boolean {
    if (this.closed) return false;
    if (Array.isArray(data)) for (const b of data) this.enqueueBytes(b);
    else this.enqueueBytes(data);
    if (this.heartbeatTimer) this.heartbeatTimer.wrote = true;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushTick);
    }
    return this.socket.writableNeedDrain;
  }

  /**
   * Publishes and acks are encoded back to back into the encoder's slab: a frame that starts where the
   * previous pending one ends is merged into it (a wider view, no copy), so a burst leaves as one buffer
   * instead of a writev of hundreds of tiny ones.
   */
  private enqueueBytes(b: Buffer): void {
    this.pendingBytes += b.length;
    const tail = this.tail;
    if (tail !== null) {
      if (tail.buffer === b.buffer && tail.byteOffset + this.tailLength === b.byteOffset) {
        this.tailLength += b.length;
        return;
      }
      this.pending.push(this.tailView(tail));
    }
    this.tail = b;
    this.tailLength = b.length;
  }

  private tailView(tail: Buffer): Buffer {
    return this.tailLength === tail.length ? tail : Buffer.from(tail.buffer, tail.byteOffset, this.tailLength);
  }

  /** @internal */
  sendMethod<N extends MethodName>(channel: number, name: N, args: MethodArgs[N]): boolean {
    return this.send(this.encoder.method(channel, name, args));
  }

  /** @internal Resolves when the socket has drained (or immediately when it need not). */
  waitForDrain(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** @internal Resolves when the broker is not blocking publishers; rejects after blockedConnectionTimeout. */
  waitUntilUnblocked(): Promise<void> | null {
    if (this.blockedReason === null) return null;
    return new Promise((resolve, reject) => {
      const waiter: { resolve: () => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = { resolve, reject };
      const ms = this.options.blockedConnectionTimeoutMs;
      if (ms > 0) {
        waiter.timer = setTimeout(() => {
          this.unblockWaiters = this.unblockWaiters.filter((w) => w !== waiter);
          reject(
            new BlockedTimeoutError(
              `publish waited ${ms} ms while the broker blocked the connection (${this.blockedReason})`,
              'publish (blocked)',
              ms,
            ),
          );
        }, ms);
      }
      this.unblockWaiters.push(waiter);
    });
  }

  /** @internal */
  releaseChannel(id: number): void {
    this.channels.delete(id);
  }

  /** @internal A channel hit a protocol violation: close the connection with that code. */
  protocolFailure(err: ProtocolError): void {
    this.failWithProtocolError(err);
  }

  // ---- frames in ----

  private onData(chunk: Buffer): void {
    if (this.heartbeatTimer) this.heartbeatTimer.read = true;
    if (this.handshake && chunk.length >= 4 && chunk.readUInt32BE(0) === 0x414d5150) {
      // "AMQP...": the broker refused our protocol version and told us which one it speaks.
      this.handshake.reject(
        new ProtocolError(`the broker does not speak AMQP 0-9-1 (it answered with a protocol header)`),
      );
      return;
    }
    try {
      this.parser.push(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.failWithProtocolError(err);
      else
        this.failWithProtocolError(
          new ProtocolError(`internal error handling a frame: ${(err as Error).message}`, ReplyCode.INTERNAL_ERROR),
        );
    }
  }

  private onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    if (type === FRAME_HEARTBEAT) return;
    if (channel === 0) {
      if (type !== FRAME_METHOD) throw new ProtocolError('content frame on channel 0', ReplyCode.COMMAND_INVALID);
      this.onConnectionMethod(decodeMethod(buf.subarray(start, end)));
      return;
    }
    const ch = this.channels.get(channel);
    if (!ch) {
      // Frames for a channel we already released (e.g. in flight while it closed) are dropped.
      this.logger.debug?.(`frame for unknown channel ${channel} dropped`);
      return;
    }
    ch.onFrame(type, buf, start, end);
  }

  private onConnectionMethod(m: DecodedMethod): void {
    if (this.handshake) {
      if (m.name === 'connection.close') {
        this.sendMethod(0, 'connection.close-ok', {});
        this.flush();
        this.handshake.reject(this.handshakeCloseError(m.args));
        return;
      }
      this.handshake.resolve(m);
      return;
    }
    switch (m.name) {
      case 'connection.close': {
        this.sendMethod(0, 'connection.close-ok', {});
        this.flush();
        const { replyCode, replyText, classId, methodId } = m.args;
        const err = new ConnectionError(
          `connection closed by the broker: ${replyCode} ${replyText}`,
          replyCode,
          replyText,
          classId ? { classId, methodId, methodName: methodName(classId, methodId) } : undefined,
        );
        this.finish(err);
        this.socket.end();
        return;
      }
      case 'connection.close-ok':
        this.closeOkWaiter?.();
        return;
      case 'connection.blocked':
        this.blockedReason = m.args.reason;
        this.emit('blocked', m.args.reason);
        return;
      case 'connection.unblocked': {
        this.blockedReason = null;
        const waiters = this.unblockWaiters;
        this.unblockWaiters = [];
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.resolve();
        }
        this.emit('unblocked');
        return;
      }
      case 'connection.update-secret-ok':
        this.channel0Waiter?.(m);
        return;
      default:
        throw new ProtocolError(`unexpected ${m.name} on channel 0`, ReplyCode.COMMAND_INVALID);
    }
  }

  private channel0Waiter: ((m: DecodedMethod) => void) | null = null;
  /** Rejects the channel-0 waiter when the connection ends (see finish). */
  private channel0Fail: ((err: Error) => void) | null = null;

  private expectOnChannel0(name: MethodName): Promise<void> {
    return new Promise((resolve, reject) => {
      this.channel0Fail = reject;
      this.channel0Waiter = (m) => {
        this.channel0Waiter = null;
        this.channel0Fail = null;
        if (m.name === name) resolve();
        else reject(new ProtocolError(`expected ${name}, got ${m.name}`, ReplyCode.COMMAND_INVALID));
      };
    });
  }

  // ---- handshake ----

  private nextHandshakeMethod(): Promise<DecodedMethod> {
    return new Promise((resolve, reject) => {
      this.handshake = {
        resolve: (m) => resolve(m),
        reject: (e) => reject(e),
      };
    });
  }

  private async runHandshake(): Promise<void> {
    const o = this.options;
    const onLost = (err: AmqpError | undefined): void =>
      this.handshake?.reject(err ?? new ConnectionLostError('closed'));
    this.once('close', onLost);
    try {
      let next = this.nextHandshakeMethod();
      this.socket.write(PROTOCOL_HEADER);
      const start = await next;
      if (start.name !== 'connection.start') throw unexpectedHandshake('connection.start', start.name);
      this.serverProperties = start.args.serverProperties;
      const sasl = chooseMechanism(start.args.mechanisms, o.mechanisms, this.endpoint);
      next = this.nextHandshakeMethod();
      this.sendMethod(0, 'connection.start-ok', {
        clientProperties: this.clientProperties(),
        mechanism: sasl.mechanism,
        // The response is raw bytes (the writer takes a Buffer for long strings); a string
        // round-trip would mangle non-ASCII passwords.
        response: sasl.response as unknown as string,
        locale: o.locale,
      });
      let tune = await next;
      if (tune.name === 'connection.secure')
        throw new AuthenticationError(
          `the broker sent a SASL challenge for ${sasl.mechanism}, which this client does not answer`,
          ReplyCode.ACCESS_REFUSED,
          'unexpected SASL challenge',
        );
      if (tune.name !== 'connection.tune') throw unexpectedHandshake('connection.tune', tune.name);
      const t = tune.args;
      this.channelMax = negotiate(o.channelMax, t.channelMax) || 65535;
      this.channelMax = Math.min(this.channelMax, 65535);
      this.frameMax = Math.max(DEFAULTS.minFrameMax, negotiate(o.frameMax, t.frameMax));
      this.heartbeat = negotiate(o.heartbeat, t.heartbeat);
      if (o.heartbeat === 0) this.heartbeat = 0;
      this.encoder.frameMax = this.frameMax;
      this.parser.frameMax = this.frameMax;
      next = this.nextHandshakeMethod();
      this.sendMethod(0, 'connection.tune-ok', {
        channelMax: this.channelMax,
        frameMax: this.frameMax,
        heartbeat: this.heartbeat,
      });
      this.sendMethod(0, 'connection.open', { virtualHost: this.endpoint.vhost });
      tune = await next;
      if (tune.name !== 'connection.open-ok') throw unexpectedHandshake('connection.open-ok', tune.name);
      this.handshake = null;
      this.startHeartbeat();
    } finally {
      this.off('close', onLost);
      this.handshake = null;
    }
  }

  private handshakeCloseError(args: MethodArgs['connection.close']): AmqpError {
    const { replyCode, replyText, classId, methodId } = args;
    const failed = classId ? { classId, methodId, methodName: methodName(classId, methodId) } : undefined;
    const where = describeEndpoint(this.endpoint);
    if (replyCode === ReplyCode.ACCESS_REFUSED && (classId === 0 || classId === 10) && methodId !== 40) {
      return new AuthenticationError(
        `login to ${where} refused: ${replyCode} ${replyText}`,
        replyCode,
        replyText,
        failed,
      );
    }
    if (methodId === 40 || replyCode === ReplyCode.NOT_ALLOWED || replyCode === ReplyCode.INVALID_PATH) {
      return new VhostError(
        `cannot open vhost '${this.endpoint.vhost}' on ${where}: ${replyCode} ${replyText}`,
        replyCode,
        replyText,
        failed,
      );
    }
    return new ConnectionError(
      `the broker closed the connection during the handshake: ${replyCode} ${replyText}`,
      replyCode,
      replyText,
      failed,
    );
  }

  private clientProperties(): FieldTable {
    const o = this.options;
    const props: FieldTable = {
      product: 'nestjs-warren',
      version: VERSION,
      platform: `Node.js ${process.version}`,
      information: 'https://www.npmjs.com/package/nestjs-warren',
      capabilities: {
        publisher_confirms: true,
        consumer_cancel_notify: true,
        exchange_exchange_bindings: true,
        'basic.nack': true,
        'connection.blocked': true,
        authentication_failure_close: true,
        per_consumer_qos: true,
      },
      ...(o.clientProperties as FieldTable),
    };
    if (o.connectionName) props.connection_name = o.connectionName;
    return props;
  }

  private startHeartbeat(): void {
    if (this.heartbeat <= 0) return;
    this.heartbeatTimer = new Heartbeat(
      this.heartbeat,
      () => {
        if (!this.closed) this.socket.write(HEARTBEAT_FRAME);
      },
      () => this.lost(new HeartbeatTimeoutError(this.heartbeat)),
      (ms) => {
        this.logger.warn(
          `event loop was blocked for ${ms} ms (heartbeat ${this.heartbeat}s): the broker may close this connection for missed heartbeats`,
        );
        this.emit('eventLoopBlocked', ms);
      },
    );
    this.heartbeatTimer.start();
  }

  // ---- writes ----

  private readonly flushTick = (): void => {
    // Deferred acks join this write (flushScheduled is still set: their sends schedule nothing new).
    this.runDeferredAcks();
    this.flushScheduled = false;
    this.flush();
  };

  /** @internal A channel has acks waiting (see AckLedger): have it send them at the next write. */
  deferAcks(channel: Channel): void {
    this.ackChannels.push(channel);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushTick);
    }
  }

  private runDeferredAcks(): void {
    if (this.ackChannels.length === 0) return;
    const channels = this.ackChannels;
    this.ackChannels = [];
    for (const ch of channels) ch.flushDeferredAcks();
  }

  private flush(): void {
    const tail = this.tail;
    if (tail === null || this.closed) return;
    const pending = this.pending;
    this.tail = null;
    this.pendingBytes = 0;
    if (pending.length === 0) {
      this.socket.write(this.tailView(tail));
      return;
    }
    pending.push(this.tailView(tail));
    this.pending = [];
    // One writev for the whole batch.
    this.socket.cork();
    for (const b of pending) this.socket.write(b);
    this.socket.uncork();
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  // ---- endings ----

  private failWithProtocolError(err: ProtocolError): void {
    if (this.closed) return;
    this.logger.error(`protocol error, closing the connection: ${err.message}`);
    try {
      this.sendMethod(0, 'connection.close', {
        replyCode: err.replyCode,
        replyText: err.message.slice(0, 255),
        classId: 0,
        methodId: 0,
      });
      this.flush();
    } catch {
      // Nothing more to say to a peer we cannot encode for.
    }
    this.finish(err);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private lost(err: AmqpError): void {
    if (this.closed) return;
    // An application close that is under way ends here quietly.
    this.finish(this.closing ? undefined : err);
    this.socket.destroy();
  }

  /** Destroy without the closing handshake. */
  destroy(err?: AmqpError): void {
    this.finish(err ?? new ClosedError('connection destroyed'));
    this.socket.destroy();
  }

  /** Mark closed once: fail every channel and waiter, stop timers, emit `close`. */
  private finish(err: AmqpError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.heartbeatTimer?.stop();
    this.pending = [];
    this.tail = null;
    this.pendingBytes = 0;
    const channelErr = err ?? new ClosedError('connection closed');
    for (const ch of this.channels.values()) ch.connectionClosed(channelErr);
    this.channels.clear();
    for (const w of this.unblockWaiters) {
      clearTimeout(w.timer);
      w.reject(channelErr);
    }
    this.unblockWaiters = [];
    this.onDrain();
    this.handshake?.reject(channelErr);
    this.channel0Fail?.(channelErr);
    this.channel0Waiter = null;
    this.channel0Fail = null;
    this.closeOkWaiter?.();
    this.emit('close', err);
  }

  private allocateChannelId(): number {
    for (let id = 1; id <= this.channelMax; id++) if (!this.channels.has(id)) return id;
    throw new ConnectionError(
      `no free channel: all ${this.channelMax} are in use (channel_max)`,
      ReplyCode.RESOURCE_ERROR,
      'channel_max reached',
    );
  }

  private assertOpen(): void {
    if (this.closed || this.closing) {
      throw this.closeError ?? new ClosedError('the connection is closed');
    }
  }
}

/** tune negotiation: the lower of two values where 0 means "no limit". */
function negotiate(ours: number, theirs: number): number {
  if (ours === 0) return theirs;
  if (theirs === 0) return ours;
  return Math.min(ours, theirs);
}

function unexpectedHandshake(expected: string, got: string): ProtocolError {
  return new ProtocolError(`handshake: expected ${expected}, got ${got}`, ReplyCode.COMMAND_INVALID);
}

/** Race a promise against a timer; on expiry reject with TimeoutError naming the operation. */
export function withTimeout<T>(p: Promise<T>, ms: number, operation: string): Promise<T> {
  if (ms <= 0) return p;
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`${operation} timed out after ${ms} ms`, operation, ms)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
