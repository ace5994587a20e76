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
import { askForCredentials, SecretRefresher } from './credentials';
import { Deferred, WaiterList, withTimeout } from './deferred';
import { Heartbeat } from './heartbeat';
import { consoleLogger, type Logger } from './logger';
import type { ConnectionOptionsInput, Endpoint, ResolvedConnectionOptions } from './options';
import type { FieldTable } from './protocol/field-table';
import { FrameParser, FRAME_HEARTBEAT, FRAME_METHOD } from './protocol/frame-parser';
import { FrameEncoder, HEARTBEAT_FRAME } from './protocol/frame-writer';
import { decodeMethod, methodName, type DecodedMethod } from './protocol/methods';
import { Constants, type MethodArgs, type MethodName, PROTOCOL_VERSION } from './protocol/spec.generated';
import { connectWithPolicy } from './reconnect-policy';
import { chooseMechanism, describeLogin } from './sasl';
import { openSocket } from './socket';
import { describeEndpoint } from './redact';
import { resolveConnectionOptions } from './resolve-options';

/** What a client sends first: 'AMQP', 0, then the protocol version. */
const PROTOCOL_HEADER = Buffer.from([
  ...Buffer.from('AMQP', 'latin1'),
  0,
  PROTOCOL_VERSION.major,
  PROTOCOL_VERSION.minor,
  PROTOCOL_VERSION.revision,
]);
/** Flush the write batch synchronously once it holds this much. */
const FLUSH_BYTES = 64 * 1024;
const VERSION = '0.1.0';
/**
 * Upper bound on waiting for the peer at the end: for close-ok after our connection.close, and for the
 * peer to close TCP after our close-ok (or our protocol-error close). A peer that is still silent then
 * gets its socket destroyed, so a dead or hostile peer cannot keep the process alive. The actual wait is
 * min(operationTimeout, this).
 */
const CLOSE_WAIT_CAP_MS = 5000;
/** The operation a publish waiting out connection.blocked is named by. */
const BLOCKED_WAIT = 'publish (blocked)';
/** The method the handshake waits for next. */
type HandshakeStep = 'connection.start' | 'connection.tune' | 'connection.open-ok';

/** Events of an {@link AmqpConnection}: `conn.on('close', (error) => ...)`. */
export interface ConnectionEvents {
  /** The connection is gone. `error` is undefined after an application `close()`. */
  close: [error: AmqpError | undefined];
  /**
   * The broker stopped reading from publishing connections (`connection.blocked`: a memory or disk alarm); `reason`
   * is the broker's. Publishes wait (see `blockedConnectionTimeout`) until `unblocked`.
   */
  blocked: [reason: string];
  /** The broker lifted the block (`connection.unblocked`): waiting publishes go out. */
  unblocked: [];
  /** The event loop was blocked for `ms` — longer than the heartbeat interval. */
  eventLoopBlocked: [ms: number];
  /** Rotating credentials: the broker took the provider's new secret (`connection.update-secret`). */
  secretUpdated: [];
  /** Rotating credentials: refreshing failed (the provider or the broker refused); tried again after `retryInMs`. */
  secretRefreshFailed: [error: Error, retryInMs: number];
}

/** What {@link AmqpConnection.connect} takes: the connection options, plus where to log. */
export interface ConnectOptions extends ConnectionOptionsInput {
  /** Where the client logs what it cannot throw (default: warnings and errors to the console, debug silent). */
  logger?: Logger;
}

/**
 * One AMQP 0-9-1 connection: the socket, the handshake, heartbeats, flow control (blocked/unblocked)
 * and the channel table. Frames flow: socket → FrameParser → channel 0 (here) or a Channel.
 */
export class AmqpConnection extends EventEmitter<ConnectionEvents> {
  /** The broker's `server-properties` from connection.start. */
  serverProperties: FieldTable = {};
  /** Highest channel number, as negotiated (tune / tune-ok): the lower non-zero of ours and the broker's. */
  channelMax = 0;
  /** Largest frame, bytes, as negotiated: the lower of ours and the broker's. */
  frameMax = 0;
  /** Heartbeat interval, seconds, as negotiated (0: none). No frame for 2 × this: the peer is considered dead. */
  heartbeat = 0;
  /** The endpoint this connection reached (its password never printed). */
  readonly endpoint: Endpoint;
  /** The resolved options it was opened with. */
  readonly options: ResolvedConnectionOptions;
  /** Where it logs what it cannot throw. */
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
  private readonly drainWaiters = new WaiterList();
  private blockedReason: string | null = null;
  private readonly unblockWaiters = new WaiterList();
  private closed = false;
  private closing: Promise<void> | null = null;
  private closeError: AmqpError | undefined;
  /** Settled by the broker's close-ok (or the connection's end). */
  private readonly closeOk = new Deferred();
  /** Settled when the socket has closed: nothing of this connection is left. */
  private readonly socketGone = new Deferred();
  /** Destroys a socket whose peer keeps TCP open after the closing handshake (see endSocket). */
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Where the handshake is; null once open (or ended). */
  private handshakeStep: HandshakeStep | null = null;
  private readonly handshakeDone = new Deferred();
  private saslMechanism = '';
  /**
   * Events raised by frames that arrived with open-ok: nobody can be listening yet (connect() has not
   * returned), so they are emitted on the next turn of the event loop, in order, instead of being lost.
   */
  private heldEvents: Array<() => void> | null = null;
  private heldEventsRelease: NodeJS.Immediate | null = null;
  /** The pending channel-0 request (update-secret) and the reply it waits for. */
  private channel0Reply: { name: MethodName; reply: Deferred } | null = null;

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
    // Handled by connectOnce when it runs the handshake; a connection ended before that has nobody to tell.
    this.handshakeDone.promise.catch(() => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.lost(new ConnectionLostError(`socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => {
      this.clearLinger();
      this.lost(new ConnectionLostError('socket closed by the peer'));
      this.socketGone.resolve();
    });
    socket.on('drain', () => this.drainWaiters.resolveAll());
  }

  /**
   * Connect: try each endpoint in order (or shuffled), the whole list `connectionAttempts` times with
   * `retryDelay` between rounds. Authentication and vhost failures are final and never retried.
   *
   * @param input A URL (`amqp://user:pass@host:5672/vhost?heartbeat=30`), several URLs, or an options object.
   * @throws {@link ConfigError} for a bad URL or option (before anything is sent).
   * @throws {@link AuthenticationError} when the login is refused, {@link VhostError} when the vhost cannot be opened.
   * @throws the last round's error otherwise: a {@link ConnectionLostError} (refused, reset, TLS failure), a
   *   {@link TimeoutError} (`handshakeTimeout`) or a {@link ConnectionError} (the broker closed the connection).
   */
  static async connect(input: string | string[] | ConnectOptions = {}): Promise<AmqpConnection> {
    const options = resolveConnectionOptions(input);
    const logger = (typeof input === 'object' && !Array.isArray(input) && input.logger) || consoleLogger;
    return connectWithPolicy(options, logger, { maxRounds: options.connectionAttempts });
  }

  /**
   * One endpoint, one try: TCP/TLS, then the AMQP handshake, all within handshakeTimeout. Rejects when the
   * connection ended before it could be returned — even by frames that came in the same read as open-ok
   * (a broker close, a malformed frame) — with what ended it. `signal` aborts the attempt at any stage
   * (TCP or TLS connect, handshake): the socket is destroyed, every timer and listener of the attempt is
   * gone, and the promise rejects with `ClosedError('connect aborted')`.
   * @internal
   */
  static async connectOnce(
    endpoint: Endpoint,
    options: ResolvedConnectionOptions,
    logger: Logger = consoleLogger,
    signal?: AbortSignal,
  ): Promise<AmqpConnection> {
    if (signal?.aborted) throw connectAborted();
    const deadline = Date.now() + options.handshakeTimeoutMs;
    // Rotating credentials: asked for on every connect, and they replace the URL's for this endpoint.
    const credentials = options.credentials ? await askForCredentials(options.credentials) : undefined;
    const fetchedAt = Date.now();
    if (credentials) endpoint = { ...endpoint, username: credentials.username, password: credentials.password };
    const socket = await openSocket(endpoint, {
      connectionTimeoutMs: Math.min(options.connectionTimeoutMs, options.handshakeTimeoutMs),
      noDelay: options.noDelay,
      keepAlive: options.keepAlive,
      signal,
    });
    const conn = new AmqpConnection(socket, endpoint, options, logger);
    const onAbort = (): void => conn.destroy(connectAborted());
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) onAbort();
      await withTimeout(
        conn.runHandshake(),
        Math.max(1, deadline - Date.now()),
        'handshake',
        () => `AMQP handshake with ${describeEndpoint(endpoint)} timed out after ${options.handshakeTimeoutMs} ms`,
        (err) => conn.destroy(err),
      );
      if (conn.closed) throw conn.closeError ?? new ConnectionLostError('the connection ended during the handshake');
      if (credentials && options.credentials) {
        conn.secretRefresher = new SecretRefresher(options.credentials, {
          update: (secret) => conn.updateSecret(secret, 'credentials refreshed by their provider'),
          updated: () => conn.emit('secretUpdated'),
          failed: (error, retryInMs) => {
            conn.logger.warn(
              `${describeEndpoint(conn.endpoint)}: refreshing the credentials failed (${error.message}); retrying in ${retryInMs} ms`,
            );
            conn.emit('secretRefreshFailed', error, retryInMs);
          },
        });
        conn.secretRefresher.start(credentials, fetchedAt);
      }
    } catch (err) {
      conn.destroy(err instanceof AmqpError ? err : undefined);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
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

  /** True until the connection ends or `close()` is called. */
  get isOpen(): boolean {
    return !this.closed && this.closing === null;
  }

  /** True while the broker blocks publishing (`connection.blocked`, until `connection.unblocked`). */
  get isBlocked(): boolean {
    return this.blockedReason !== null;
  }

  /** Why the connection ended, once it has (undefined for an application close). */
  get closeReason(): AmqpError | undefined {
    return this.closeError;
  }

  /**
   * Open a channel (numbers from 1, lowest free first, never above channel_max).
   *
   * @throws {@link ClosedError} (or the reason it ended) when the connection is closed, a {@link ConnectionError}
   *   (506 RESOURCE_ERROR) when every channel number is in use.
   */
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
  private secretRefresher: SecretRefresher | null = null;

  private async sendUpdateSecret(newSecret: string, reason: string): Promise<void> {
    const reply = new Deferred();
    this.channel0Reply = { name: 'connection.update-secret-ok', reply };
    this.sendMethod(0, 'connection.update-secret', { newSecret, reason });
    try {
      await withTimeout(reply.promise, this.options.operationTimeoutMs, 'connection.update-secret');
    } finally {
      if (this.channel0Reply?.reply === reply) this.channel0Reply = null;
    }
  }

  /**
   * Graceful close: waits (bounded by operationTimeout) for each channel's pending synchronous
   * methods and unconfirmed publishes, then connection.close → close-ok (waited for at most
   * min(operationTimeout, 5 s)), then the socket is destroyed. Resolves once the socket has closed:
   * no socket, timer or listener of this connection is left. On a connection that has already ended
   * (e.g. closed by the broker) it destroys the socket at once.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.closed) {
      this.destroySocket();
      return this.socketGone.promise;
    }
    this.closing = (async () => {
      const settle = Promise.all([...this.channels.values()].map((ch) => ch.settle()));
      await withTimeout(settle, this.options.operationTimeoutMs, 'close (settling channels)').catch(() => undefined);
      if (!this.closed) {
        // Acks made before close() count: they leave ahead of connection.close.
        this.runDeferredAcks();
        this.sendMethod(0, 'connection.close', {
          replyCode: ReplyCode.REPLY_SUCCESS,
          replyText: 'Goodbye',
          classId: 0,
          methodId: 0,
        });
        this.flush();
        await withTimeout(this.closeOk.promise, this.closeWaitMs(), 'connection.close').catch(() => undefined);
        this.finish(undefined);
      }
      // After close-ok there is nothing left to say; a peer that never answered gets no more time.
      this.destroySocket();
      await this.socketGone.promise;
    })();
    return this.closing;
  }

  /**
   * What `JSON.stringify` shows: where it is connected (no password), its state and what was negotiated. Never the
   * options or the socket, which hold the password and the TLS key.
   */
  toJSON(): {
    /** The endpoint, as `describeEndpoint` gives it (no password). */
    endpoint: string;
    /** {@link AmqpConnection.isOpen}. */
    open: boolean;
    /** {@link AmqpConnection.isBlocked}. */
    blocked: boolean;
    /** Negotiated heartbeat, seconds (0: none). */
    heartbeat: number;
    /** Negotiated largest frame, bytes. */
    frameMax: number;
    /** Negotiated highest channel number. */
    channelMax: number;
    /** Channels open on it. */
    channels: number;
  } {
    return {
      endpoint: describeEndpoint(this.endpoint),
      open: this.isOpen,
      blocked: this.isBlocked,
      heartbeat: this.heartbeat,
      frameMax: this.frameMax,
      channelMax: this.channelMax,
      channels: this.channels.size,
    };
  }

  /** What `util.inspect` shows: the endpoint without its password, and whether the connection is open. */
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
    return this.drainWaiters.wait();
  }

  /** @internal Resolves when the broker is not blocking publishers; rejects after blockedConnectionTimeout. */
  waitUntilUnblocked(): Promise<void> | null {
    if (this.blockedReason === null) return null;
    const ms = this.options.blockedConnectionTimeoutMs;
    if (ms <= 0) return this.unblockWaiters.wait();
    const reason = this.blockedReason;
    return this.unblockWaiters.wait(ms, BLOCKED_WAIT).catch((err: unknown) => {
      if (err instanceof TimeoutError && err.operation === BLOCKED_WAIT) {
        throw new BlockedTimeoutError(
          `publish waited ${ms} ms while the broker blocked the connection (${reason})`,
          BLOCKED_WAIT,
          ms,
        );
      }
      throw err;
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
    if (this.closed) return;
    if (this.heartbeatTimer) this.heartbeatTimer.read = true;
    if (this.handshakeStep === 'connection.start' && chunk.length >= 4 && chunk.readUInt32BE(0) === 0x414d5150) {
      // "AMQP...": the broker refused our protocol version and told us which one it speaks.
      this.destroy(new ProtocolError(`the broker does not speak AMQP 0-9-1 (it answered with a protocol header)`));
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
    if (this.closed) return;
    if (this.handshakeStep !== null) {
      this.onHandshakeMethod(this.handshakeStep, m);
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
        this.endSocket();
        return;
      }
      case 'connection.close-ok':
        this.closeOk.resolve();
        return;
      case 'connection.blocked': {
        const reason = m.args.reason;
        this.blockedReason = reason;
        this.emitSoon(() => this.emit('blocked', reason));
        return;
      }
      case 'connection.unblocked':
        this.blockedReason = null;
        this.unblockWaiters.resolveAll();
        this.emitSoon(() => this.emit('unblocked'));
        return;
      case 'connection.update-secret-ok':
        if (this.channel0Reply?.name === m.name) this.channel0Reply.reply.resolve();
        else this.logger.debug?.(`${m.name} that no request waits for (a late reply?) dropped`);
        return;
      default:
        throw new ProtocolError(`unexpected ${m.name} on channel 0`, ReplyCode.COMMAND_INVALID);
    }
  }

  /**
   * Emit now, or — while frames that came with open-ok are being handled — on the next turn of the event
   * loop, when the caller of connect() has had the chance to attach its listeners.
   */
  private emitSoon(emit: () => void): void {
    if (this.heldEvents === null) emit();
    else this.heldEvents.push(emit);
  }

  private readonly releaseHeldEvents = (): void => {
    const events = this.heldEvents ?? [];
    this.heldEvents = null;
    this.heldEventsRelease = null;
    for (const emit of events) emit();
  };

  // ---- handshake ----

  /** Send the protocol header; resolves once open-ok has been handled (connectOnce bounds it in time). */
  private runHandshake(): Promise<void> {
    if (this.closed) return Promise.reject(this.closeError ?? connectAborted());
    this.handshakeStep = 'connection.start';
    this.socket.write(PROTOCOL_HEADER);
    return this.handshakeDone.promise;
  }

  /**
   * One handshake step, handled synchronously as its frame arrives: the frames that follow in the same
   * read meet the state this step left (after open-ok: an open connection).
   */
  private onHandshakeMethod(step: HandshakeStep, m: DecodedMethod): void {
    if (m.name === 'connection.close') {
      this.sendMethod(0, 'connection.close-ok', {});
      this.flush();
      this.destroy(this.handshakeCloseError(step, m.args));
      return;
    }
    try {
      if (m.name !== step) {
        if (step === 'connection.tune' && m.name === 'connection.secure')
          throw new AuthenticationError(
            `the broker sent a SASL challenge for ${this.saslMechanism}, which this client does not answer`,
            ReplyCode.ACCESS_REFUSED,
            'unexpected SASL challenge',
          );
        throw unexpectedHandshake(step, m.name);
      }
      if (m.name === 'connection.start') this.onStart(m.args);
      else if (m.name === 'connection.tune') this.onTune(m.args);
      else this.onOpenOk();
    } catch (err) {
      this.destroy(
        err instanceof AmqpError
          ? err
          : new ProtocolError(`handshake: ${(err as Error).message}`, ReplyCode.INTERNAL_ERROR),
      );
    }
  }

  private onStart(start: MethodArgs['connection.start']): void {
    const o = this.options;
    this.serverProperties = start.serverProperties;
    const sasl = chooseMechanism(start.mechanisms, o.mechanisms, this.endpoint);
    this.saslMechanism = sasl.mechanism;
    this.handshakeStep = 'connection.tune';
    this.sendMethod(0, 'connection.start-ok', {
      clientProperties: this.clientProperties(),
      mechanism: sasl.mechanism,
      // The response is raw bytes (the writer takes a Buffer for long strings); a string
      // round-trip would mangle non-ASCII passwords.
      response: sasl.response as unknown as string,
      locale: o.locale,
    });
  }

  private onTune(t: MethodArgs['connection.tune']): void {
    const o = this.options;
    if (t.frameMax !== 0 && t.frameMax < Constants.FRAME_MIN_SIZE) {
      // The spec's frame-min-size: every peer must accept frames this large. Raising it above what
      // the broker offered would break its limit; going below it would break ours.
      throw new ProtocolError(
        `connection.tune: the broker's frame_max ${t.frameMax} is below the AMQP minimum of ${Constants.FRAME_MIN_SIZE} bytes`,
        ReplyCode.SYNTAX_ERROR,
      );
    }
    this.channelMax = Math.min(negotiate(o.channelMax, t.channelMax) || 65535, 65535);
    this.frameMax = negotiate(o.frameMax, t.frameMax);
    this.heartbeat = o.heartbeat === 0 ? 0 : negotiate(o.heartbeat, t.heartbeat);
    this.encoder.frameMax = this.frameMax;
    this.parser.frameMax = this.frameMax;
    this.handshakeStep = 'connection.open-ok';
    this.sendMethod(0, 'connection.tune-ok', {
      channelMax: this.channelMax,
      frameMax: this.frameMax,
      heartbeat: this.heartbeat,
    });
    this.sendMethod(0, 'connection.open', { virtualHost: this.endpoint.vhost });
  }

  private onOpenOk(): void {
    this.handshakeStep = null;
    // The rest of this read is handled as on an open connection; its events wait for listeners.
    this.heldEvents = [];
    this.heldEventsRelease = setImmediate(this.releaseHeldEvents);
    this.startHeartbeat();
    this.handshakeDone.resolve();
  }

  /**
   * A broker close during the handshake, classified by the method that failed (or, when the broker
   * names none, by the step we were at): a refusal of start-ok/secure-ok is a login failure — some
   * brokers say 530 there, not 403 — and a refusal of connection.open is about the vhost.
   */
  private handshakeCloseError(step: HandshakeStep, args: MethodArgs['connection.close']): AmqpError {
    const { replyCode, replyText, classId, methodId } = args;
    const failed = classId ? { classId, methodId, methodName: methodName(classId, methodId) } : undefined;
    const where = describeEndpoint(this.endpoint);
    const failedName = failed?.methodName ?? '';
    const refusal =
      replyCode === ReplyCode.ACCESS_REFUSED ||
      replyCode === ReplyCode.NOT_ALLOWED ||
      replyCode === ReplyCode.INVALID_PATH;
    const atLogin = failed
      ? failedName === 'connection.start-ok' || failedName === 'connection.secure-ok'
      : step === 'connection.tune';
    const atOpen = failed ? failedName === 'connection.open' : step === 'connection.open-ok';
    if (refusal && atLogin && replyCode !== ReplyCode.INVALID_PATH) {
      return new AuthenticationError(
        `${describeLogin(this.saslMechanism, this.endpoint, where)} refused: ${replyCode} ${replyText}`,
        replyCode,
        replyText,
        failed,
      );
    }
    if (refusal && atOpen) {
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
    if (this.heartbeat <= 0 || this.closed) return;
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

  // ---- endings ----

  private failWithProtocolError(err: ProtocolError): void {
    if (this.closed) return;
    if (this.handshakeStep !== null) {
      // Nothing is open yet: the attempt fails with this error (connectOnce destroys the socket).
      this.destroy(err);
      return;
    }
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
    this.endSocket();
  }

  private lost(err: AmqpError): void {
    if (this.closed) return;
    // An application close that is under way ends here quietly.
    this.finish(this.closing ? undefined : err);
    this.destroySocket();
  }

  /** Destroy without the closing handshake. */
  destroy(err?: AmqpError): void {
    this.finish(err ?? new ClosedError('connection destroyed'));
    this.destroySocket();
  }

  /**
   * End our side after the last frame we owe the peer (close-ok, or our close after a protocol error),
   * and destroy the socket if the peer has not closed its side within the close wait: a peer that keeps
   * TCP open must not keep the socket, or the process, alive.
   */
  private endSocket(): void {
    if (this.socket.destroyed || this.lingerTimer) return;
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.destroySocket(), this.closeWaitMs());
  }

  private destroySocket(): void {
    this.clearLinger();
    this.socket.destroy();
  }

  private clearLinger(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }

  /** How long the end of a connection waits for the peer (close-ok, its TCP close). */
  private closeWaitMs(): number {
    return Math.min(this.options.operationTimeoutMs, CLOSE_WAIT_CAP_MS);
  }

  /** Mark closed once: fail every channel and waiter, stop timers, emit `close`. */
  private finish(err: AmqpError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.handshakeStep = null;
    this.heartbeatTimer?.stop();
    this.heartbeatTimer = null;
    this.secretRefresher?.stop();
    this.secretRefresher = null;
    if (this.heldEventsRelease) clearImmediate(this.heldEventsRelease);
    this.heldEventsRelease = null;
    this.heldEvents = null;
    this.pending = [];
    this.tail = null;
    this.pendingBytes = 0;
    const channelErr = err ?? new ClosedError('connection closed');
    for (const ch of this.channels.values()) ch.connectionClosed(channelErr);
    this.channels.clear();
    this.unblockWaiters.rejectAll(channelErr);
    this.drainWaiters.resolveAll();
    this.handshakeDone.reject(channelErr);
    this.channel0Reply?.reply.reject(channelErr);
    this.channel0Reply = null;
    this.closeOk.resolve();
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

function connectAborted(): ClosedError {
  return new ClosedError('connect aborted');
}
