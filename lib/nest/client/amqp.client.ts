import { inspect, type InspectOptionsStylized } from 'node:util';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { Observable, type Subscriber } from 'rxjs';
import {
  ClosedError,
  ConfigError,
  EncodeError,
  TimeoutError,
  type AmqpSession,
  type FieldTable,
  type Logger,
  type Message,
  type PublishOptions,
  type UnroutableError,
} from '../../amqp';
import { checkClientOptions } from '../amqp-options.check';
import type { AmqpClientOptions } from '../amqp-options.interface';
import { DEFAULT_CONNECTION_NAME, DEFAULT_RPC_TIMEOUT_MS, WarrenHeaders } from '../amqp.constants';
import { watchSessionStatus, type AmqpSessionStatus } from '../amqp.session-status';
import { createAmqpLogger, describeError } from '../amqp.logger';
import { createSession, startSession } from '../amqp.session-factory';
import { MessageIdSource } from '../message-id';
import { AmqpRecord, type AmqpRecordOptions } from '../record-builders/amqp.record-builder';
import { routingKeyFromPattern } from '../routing/pattern-matcher';
import type { AmqpDeserializer, AmqpSerializer } from '../serialization/amqp-serializer.interface';
import { DefaultDeserializer, DefaultSerializer } from '../serialization/default.serializer';
import { AmqpRpcError, fromErrorBody } from '../server/rpc-error';
import { SessionListeners } from '../session-listeners';
import { warrenTelemetry, type RequestTrace } from '../telemetry/telemetry';
import { DirectReplyChannel, QueueReplyChannel, type ReplyChannel, type ReplyRequest } from './reply-channel';

/** What an {@link AmqpClient}'s `status` stream emits: `connected`, `disconnected` or `reconnecting`. */
export type AmqpClientStatus = AmqpSessionStatus;

/** A request waiting for its reply: what the reply channel publishes, and what unsubscribing cancels. */
class PendingCall implements ReplyRequest {
  timer: NodeJS.Timeout | undefined = undefined;
  /** False once answered, failed, timed out or unsubscribed: a request not sent yet is then never sent. */
  active = true;
  /** Its spans, when tracing. */
  trace: RequestTrace | undefined = undefined;

  constructor(
    private readonly calls: Map<string, PendingCall>,
    readonly correlationId: string,
    readonly pattern: string,
    readonly timeoutMs: number,
    readonly callback: (packet: WritePacket) => void,
    readonly exchange: string,
    readonly routingKey: string,
    readonly body: Buffer,
    readonly options: PublishOptions,
  ) {}

  isWanted(): boolean {
    return this.active;
  }

  /** The call is over (answered, failed, timed out): stop waiting for it. False if it was over already. */
  finish(): boolean {
    if (!this.active) return false;
    this.active = false;
    clearTimeout(this.timer);
    if (this.calls.get(this.correlationId) === this) this.calls.delete(this.correlationId);
    return true;
  }

  /** Unsubscribed: forget the call (a late reply is dropped quietly, an unsent request is not sent). */
  unsubscribe(): void {
    this.finish();
    this.trace?.end();
  }
}

/** A built message: where it goes and what it carries. */
interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: PublishOptions;
}

const NO_RECORD_OPTIONS: AmqpRecordOptions = Object.freeze({});

/**
 * What `emit` returns: the outcome of one publish that is already under way (Nest's emit is hot), replayed to every
 * subscriber: `undefined` then complete on the broker's confirm, or the publish error. A failure nobody subscribed to
 * is logged instead of surfacing as an unhandled rejection.
 */
class EmitResult<T> extends Observable<T> {
  private state: 'pending' | 'confirmed' | 'failed' = 'pending';
  private error: unknown = undefined;
  /** Subscribers waiting for the outcome: usually one, so no array for it. */
  private first: Subscriber<T> | null = null;
  private more: Subscriber<T>[] | null = null;
  private observed = false;

  constructor(
    published: Promise<void>,
    private readonly onUnobservedFailure: (err: unknown) => void,
  ) {
    super((subscriber) => this.add(subscriber));
    published.then(
      () => this.settle('confirmed', undefined),
      (err: unknown) => this.settle('failed', err),
    );
  }

  private add(subscriber: Subscriber<T>): void {
    this.observed = true;
    if (this.state !== 'pending') this.notify(subscriber);
    else if (!this.first) this.first = subscriber;
    else (this.more ??= []).push(subscriber);
  }

  private settle(state: 'confirmed' | 'failed', error: unknown): void {
    this.state = state;
    this.error = error;
    if (state === 'failed' && !this.observed) this.onUnobservedFailure(error);
    const first = this.first;
    const more = this.more;
    this.first = null;
    this.more = null;
    if (first) this.notify(first);
    if (more) for (const s of more) this.notify(s);
  }

  private notify(subscriber: Subscriber<T>): void {
    if (this.state === 'failed') {
      subscriber.error(this.error);
      return;
    }
    subscriber.next(undefined as T);
    subscriber.complete();
  }
}

/** Longest routing key AMQP can carry (a short string). */
const MAX_ROUTING_KEY_BYTES = 255;

/**
 * Warren's Nest client. `send(pattern, data)` publishes a request (reply_to + correlation_id) and emits the reply;
 * `emit(pattern, data)` publishes an event and completes on the broker's confirm. The pattern is the routing key.
 *
 * Use it with `ClientsModule.register([{ name, customClass: AmqpClient, options }])` (it opens its own connection),
 * or inject the module's (`AmqpClient`, sharing the module's session).
 */
// Status is `string` (values: AmqpClientStatus) so that the class fits `ClientsModule`'s `customClass: Type<ClientProxy>`.
export class AmqpClient extends ClientProxy<Record<never, (...args: never[]) => unknown>, string> {
  /** The connection name (option `name`, or the shared session's name; default `default`). */
  readonly name: string;
  private session: AmqpSession | null;
  private readonly ownsSession: boolean;
  private readonly logger: Logger;
  private readonly pending = new Map<string, PendingCall>();
  /** Correlation ids: unique per client (a random prefix) and cheap (a counter), unlike a UUID per call. */
  private readonly callIds = new MessageIdSource();
  private readonly messageIds = new MessageIdSource();
  /** The session once `connect()` resolved: publishes go straight to it. */
  private attached: AmqpSession | null = null;
  private readonly amqpSerializer: AmqpSerializer;
  private readonly amqpDeserializer: AmqpDeserializer;
  private connecting: Promise<AmqpSession> | null = null;
  private replies: ReplyChannel | null = null;
  private closed = false;
  private readonly detach: Array<() => void> = [];
  private readonly listeners = new SessionListeners();
  private readonly telemetry = warrenTelemetry();

  constructor(private readonly options: AmqpClientOptions = {}) {
    super();
    checkClientOptions(options);
    this.name = options.name ?? options.session?.name ?? DEFAULT_CONNECTION_NAME;
    this.logger = options.logger ?? createAmqpLogger(this.name);
    this.session = options.session ?? null;
    this.ownsSession = !options.session;
    if (this.session) this.listeners.attach(this.session);
    this.amqpSerializer = options.serializer ?? new DefaultSerializer();
    this.amqpDeserializer = options.deserializer ?? new DefaultDeserializer();
    checkReplyOptions(options);
  }

  /** Connects (own session) or attaches (shared session). Called by `send`/`emit`; call it early to fail fast. */
  connect(): Promise<AmqpSession> {
    if (this.closed) return Promise.reject(new ClosedError(`AmqpClient '${this.name}' is closed`));
    if (!this.connecting) {
      const connecting = this.start();
      this.connecting = connecting;
      connecting.catch(() => {
        if (this.connecting === connecting) this.connecting = null;
      });
    }
    return this.connecting;
  }

  /** Fails pending calls, stops the reply consumer, closes the session if the client opened it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failPending(new ClosedError(`AmqpClient '${this.name}' closed before the reply arrived`));
    await this.replies?.close().catch(() => undefined);
    this.replies = null;
    for (const off of this.detach.splice(0)) off();
    if (this.ownsSession && this.session) await this.session.close().catch(() => undefined);
    this.listeners.detach();
    this._status$.next('disconnected');
  }

  /** The client's session (shared, or its own once `connect()` was called); throws before that. */
  unwrap<T = AmqpSession>(): T {
    if (!this.session) throw new Error('AmqpClient: not connected yet (no session)');
    return this.session as T;
  }

  /**
   * Listen to the session's events ('connected', 'disconnected', 'reconnecting', 'recovered', ...). Before
   * `connect()` the listener waits, as with Nest's own transports, and is attached to the session as soon as there is
   * one, before it connects.
   */
  override on(event: string, callback: (...args: never[]) => unknown): void {
    this.listeners.add(event, callback);
  }

  /** Calls waiting for a reply. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  /** What `JSON.stringify` shows: never the options (they may hold the URL's password and the TLS key). */
  toJSON(): {
    /** The connection name. */
    name: string;
    /** `idle` before the first `connect()`, `connected` once it resolved, `closed` after `close()`. */
    state: 'idle' | 'connecting' | 'connected' | 'closed';
    /** The session's own summary (endpoints without passwords), or null before it exists. */
    session: ReturnType<AmqpSession['toJSON']> | null;
  } {
    const state = this.closed ? 'closed' : this.attached ? 'connected' : this.connecting ? 'connecting' : 'idle';
    return { name: this.name, state, session: this.session?.toJSON() ?? null };
  }

  /** What `util.inspect` shows: the same as `toJSON`. */
  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return `AmqpClient ${show(this.toJSON(), options)}`;
  }

  protected override normalizePattern(pattern: unknown): string {
    return routingKeyFromPattern(pattern);
  }

  /**
   * Publishes a request per subscription (cold, like Nest's), emitting the reply. Same behaviour as ClientProxy.send
   * without its per-call defer/mergeMap layers; an invalid call (no pattern or data) fails as Nest's does.
   */
  override send<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult> {
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return super.send<TResult, TInput>(pattern, data);
    }
    return new Observable<TResult>((observer) =>
      this.request(this.packet(pattern, data), this.createObserver(observer)),
    );
  }

  /**
   * Publishes the event at once (hot, like Nest's emit, whether or not anyone subscribes): the result emits
   * `undefined` and completes on the broker's confirm, or errors with the publish error (logged when nobody
   * subscribed). An invalid call (no pattern or data) fails as Nest's does.
   */
  override emit<TResult = unknown, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult> {
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return super.emit<TResult, TInput>(pattern, data);
    }
    const packet = this.packet(pattern, data);
    return new EmitResult<TResult>(this.publishEvent(packet), (err) => this.unobservedEmitFailure(packet, err));
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const call = this.request(packet, callback);
    return () => call?.unsubscribe();
  }

  protected async dispatchEvent<T = undefined>(packet: ReadPacket): Promise<T> {
    await this.publishEvent(packet);
    return undefined as T;
  }

  /** Nest 12 runs its dispatch hook in createPacket; Nest 11 has neither. */
  private packet(pattern: unknown, data: unknown): ReadPacket {
    const create = (this as unknown as { createPacket?: (pattern: unknown, data: unknown) => ReadPacket }).createPacket;
    return typeof create === 'function' ? create.call(this, pattern, data) : { pattern, data };
  }

  private unobservedEmitFailure(packet: ReadPacket, err: unknown): void {
    let pattern: string;
    try {
      pattern = this.normalizePattern(packet.pattern);
    } catch {
      pattern = String(packet.pattern);
    }
    this.logger.error(`emit '${pattern}' failed and nobody subscribed to it: ${describeError(err)}`);
  }

  /** Registers the call and publishes its request; undefined when the request could not even be built. */
  private request(packet: ReadPacket, callback: (packet: WritePacket) => void): PendingCall | undefined {
    const pattern = this.normalizePattern(packet.pattern);
    const record = packet.data instanceof AmqpRecord ? (packet.data as AmqpRecord) : undefined;
    const options = record?.options ?? NO_RECORD_OPTIONS;
    let message: OutgoingMessage;
    try {
      message = this.buildMessage(pattern, record ? record.data : packet.data, options, false);
    } catch (err) {
      callback({ err });
      return undefined;
    }
    const correlationId = options.correlationId ?? this.callIds.next();
    message.properties.correlationId = correlationId;
    const timeoutMs = options.timeout ?? this.options.timeout ?? DEFAULT_RPC_TIMEOUT_MS;
    // Nobody waits for a reply after the timeout: the broker may drop the request by then.
    if (message.properties.expiration === undefined && this.options.expireRequests !== false) {
      message.properties.expiration = String(Math.ceil(timeoutMs));
    }
    const trace = this.telemetry.request(
      pattern,
      message.exchange,
      message.routingKey,
      message.properties,
      message.body.length,
    );
    const call = new PendingCall(
      this.pending,
      correlationId,
      pattern,
      timeoutMs,
      trace ? trace.wrap(callback) : callback,
      message.exchange,
      message.routingKey,
      message.body,
      message.properties,
    );
    call.trace = trace;
    call.timer = setTimeout(this.onCallTimeout, timeoutMs, call);
    this.pending.set(correlationId, call);

    const replies = this.closed ? null : this.replies;
    if (replies) this.sendRequest(replies, call);
    else {
      this.replyChannel().then(
        (r) => this.sendRequest(r, call),
        (err: unknown) => this.failCall(call, err),
      );
    }
    return call;
  }

  private sendRequest(replies: ReplyChannel, call: PendingCall): void {
    const sending = replies.publish(call);
    call.trace?.sent(sending);
    if (sending) sending.catch((err: unknown) => this.failCall(call, err));
  }

  private failCall(call: PendingCall, err: unknown): void {
    if (call.finish()) call.callback({ err });
  }

  private readonly onCallTimeout = (call: PendingCall): void => {
    if (!call.finish()) return;
    call.callback({
      err: new TimeoutError(
        `no reply to '${call.pattern}' within ${call.timeoutMs} ms`,
        `send ${call.pattern}`,
        call.timeoutMs,
      ),
    });
  };

  /** Builds and publishes an event; resolves on the confirm. Connects first when not connected yet. */
  private publishEvent(packet: ReadPacket): Promise<void> {
    const session = this.closed ? null : this.attached;
    if (!session) return this.connect().then((s) => this.publishEventTo(s, packet));
    try {
      return this.publishEventTo(session, packet);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private publishEventTo(session: AmqpSession, packet: ReadPacket): Promise<void> {
    const pattern = this.normalizePattern(packet.pattern);
    const record = packet.data instanceof AmqpRecord ? (packet.data as AmqpRecord) : undefined;
    const m = this.buildMessage(
      pattern,
      record ? record.data : packet.data,
      record?.options ?? NO_RECORD_OPTIONS,
      true,
    );
    const trace = this.telemetry.publish(m.exchange, m.routingKey, m.properties, m.body.length);
    const published = session.publish(m.exchange, m.routingKey, m.body, m.properties);
    trace?.track(published);
    return published;
  }

  private async start(): Promise<AmqpSession> {
    if (!this.session) {
      const own = createSession({ ...this.options, name: this.name, logger: this.logger });
      this.session = own;
      this.listeners.attach(own);
      try {
        await startSession(own, { ...this.options, name: this.name }, this.logger);
      } catch (err) {
        // startSession closed it: the next connect() opens a new one instead of attaching to a closed session.
        this.listeners.detach();
        this.session = null;
        throw err;
      }
    }
    const session = this.session;
    this.watchStatus(session);
    this.attached = session;
    return session;
  }

  private async replyChannel(): Promise<ReplyChannel> {
    const session = await this.connect();
    if (!this.replies) {
      const onReply = (m: Message) => this.onReply(m);
      const onLost = (err: Error) => this.failPending(err);
      const onReturned = (correlationId: string, err: UnroutableError) => this.onReturned(correlationId, err);
      this.replies =
        this.options.replyTo === 'queue'
          ? new QueueReplyChannel(session, onReply, onLost, { queue: this.options.replyQueue })
          : new DirectReplyChannel(session, { onReply, onLost, onReturned }, this.logger, {
              confirm: this.options.confirmRequests ?? false,
            });
    }
    return this.replies;
  }

  /**
   * A reply ends its call — unless it is one value of a streamed reply (`x-warren-stream: 'next'`): then `send()`
   * emits it and keeps waiting, its timeout starting over, until the closing `'end'` reply (or an error reply).
   */
  private onReply(m: Message): void {
    const id = m.properties.correlationId;
    const call = id === undefined ? undefined : this.pending.get(id);
    const headers = m.properties.headers;
    const stream = headers?.[WarrenHeaders.STREAM];
    if (!call || (stream === 'next' ? !call.active : !call.finish())) {
      this.logger.debug?.(`dropped a reply nobody waits for (correlation id '${id ?? ''}')`);
      return;
    }
    call.trace?.replied(headers);
    if (stream === 'end') {
      call.callback({ isDisposed: true });
      return;
    }
    let value: unknown;
    let isError = false;
    try {
      if (headers !== undefined) {
        const flag = headers[WarrenHeaders.ERROR];
        isError = flag === true || flag === 'true';
      }
      value = this.amqpDeserializer.deserialize(m.body, m.properties);
    } catch (err) {
      if (stream === 'next') call.finish();
      call.callback({ err });
      return;
    }
    if (isError) {
      call.callback({ err: new AmqpRpcError(fromErrorBody(value), call.pattern) });
      return;
    }
    if (stream === 'next') {
      clearTimeout(call.timer);
      call.timer = setTimeout(this.onCallTimeout, call.timeoutMs, call);
      call.callback({ response: value });
      return;
    }
    call.callback({ response: value, isDisposed: true });
  }

  /** A mandatory request nobody could route came back: its call fails at once (a finished call's is dropped). */
  private onReturned(correlationId: string, err: UnroutableError): void {
    const call = this.pending.get(correlationId);
    if (call) this.failCall(call, err);
    else this.logger.debug?.(`dropped a returned request nobody waits for (correlation id '${correlationId}')`);
  }

  private failPending(err: Error): void {
    const calls = [...this.pending.values()];
    for (const call of calls) if (call.finish()) call.callback({ err });
  }

  private buildMessage(pattern: string, data: unknown, record: AmqpRecordOptions, isEvent: boolean): OutgoingMessage {
    const o = this.options;
    const toQueue = o.queue !== undefined && record.exchange === undefined && (o.exchange ?? '') === '';
    const exchange = record.exchange ?? (toQueue ? '' : (o.exchange ?? ''));
    const routingKey = record.routingKey ?? (toQueue ? o.queue! : (o.routingKey ?? pattern));
    // A UTF-16 unit is at most 3 UTF-8 bytes: only long keys need counting.
    if (routingKey.length * 3 > MAX_ROUTING_KEY_BYTES && Buffer.byteLength(routingKey) > MAX_ROUTING_KEY_BYTES) {
      throw new EncodeError(
        'routingKey',
        `routing key for pattern '${pattern}' is longer than ${MAX_ROUTING_KEY_BYTES} bytes`,
      );
    }
    const serialized = this.amqpSerializer.serialize(data);
    // Only a table when there is something in it: an empty one still costs an encode and decodes on both ends.
    let headers: FieldTable | undefined =
      o.headers === undefined && record.headers === undefined ? undefined : { ...o.headers, ...record.headers };
    if (routingKey !== pattern) (headers ??= {})[WarrenHeaders.PATTERN] = pattern;
    const expiration = record.expiration ?? o.expiration;
    // Events carry a message id (for deduplication) and a timestamp; requests are identified by their correlation id
    // and carry neither unless the record sets them: less to encode and decode on every call.
    const timestamp = record.timestamp ?? (isEvent ? new Date() : undefined);
    return {
      exchange,
      routingKey,
      body: serialized.body,
      properties: {
        contentType: record.contentType ?? serialized.contentType,
        contentEncoding: record.contentEncoding ?? serialized.contentEncoding,
        headers,
        persistent: record.persistent ?? o.persistent ?? isEvent,
        mandatory: record.mandatory ?? o.mandatory ?? !isEvent,
        priority: record.priority ?? o.priority,
        expiration: expiration === undefined ? undefined : String(expiration),
        messageId: record.messageId ?? (isEvent ? this.messageIds.next() : undefined),
        timestamp: timestamp === undefined || timestamp instanceof Date ? timestamp : new Date(timestamp),
        type: record.type,
        appId: record.appId ?? o.appId,
        userId: record.userId,
      },
    };
  }

  private watchStatus(session: AmqpSession): void {
    this.detach.push(watchSessionStatus(session, (status) => this._status$.next(status)));
  }
}

/** `replyTo` is a known mode; `replyQueue` a name the broker accepts for a client's own queue, with `replyTo: 'queue'`. */
function checkReplyOptions(o: AmqpClientOptions): void {
  const mode: unknown = o.replyTo;
  if (mode !== undefined && mode !== 'direct' && mode !== 'queue') {
    throw new ConfigError('replyTo', `must be 'direct' or 'queue', got ${JSON.stringify(mode)}`);
  }
  const name: unknown = o.replyQueue;
  if (name === undefined) return;
  if (mode !== 'queue') throw new ConfigError('replyQueue', "needs replyTo: 'queue' (direct reply-to has no queue)");
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError('replyQueue', `must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (Buffer.byteLength(name) > MAX_ROUTING_KEY_BYTES) {
    throw new ConfigError('replyQueue', `is longer than ${MAX_ROUTING_KEY_BYTES} bytes`);
  }
  // RabbitMQ refuses to declare `amq.`-prefixed queues (403).
  if (name.startsWith('amq.'))
    throw new ConfigError('replyQueue', `'${name}': names starting with 'amq.' are reserved`);
}
