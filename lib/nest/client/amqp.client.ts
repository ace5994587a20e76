import { randomUUID } from 'node:crypto';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import {
  ClosedError,
  TimeoutError,
  type AmqpSession,
  type FieldTable,
  type Logger,
  type Message,
  type PublishOptions,
  type SessionEvents,
} from '../../amqp';
import type { AmqpClientOptions } from '../amqp-options.interface';
import { DEFAULT_CONNECTION_NAME, DEFAULT_RPC_TIMEOUT_MS, WarrenHeaders } from '../amqp.constants';
import { createAmqpLogger } from '../amqp.logger';
import { createSession, startSession } from '../amqp.session-factory';
import { unwrapRecord, type AmqpRecordOptions } from '../record-builders/amqp.record-builder';
import { routingKeyFromPattern } from '../routing/pattern-matcher';
import type { AmqpDeserializer, AmqpSerializer } from '../serialization/amqp-serializer.interface';
import { DefaultDeserializer, DefaultSerializer } from '../serialization/default.serializer';
import { AmqpRpcError, fromErrorBody } from '../server/rpc-error';
import { DirectReplyChannel, QueueReplyChannel, type ReplyChannel } from './reply-channel';

export type AmqpClientStatus = 'connected' | 'disconnected' | 'reconnecting';

interface PendingCall {
  pattern: string;
  callback: (packet: WritePacket) => void;
  timer: NodeJS.Timeout;
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
  readonly name: string;
  private session: AmqpSession | null;
  private readonly ownsSession: boolean;
  private readonly logger: Logger;
  private readonly pending = new Map<string, PendingCall>();
  private readonly amqpSerializer: AmqpSerializer;
  private readonly amqpDeserializer: AmqpDeserializer;
  private connecting: Promise<AmqpSession> | null = null;
  private replies: ReplyChannel | null = null;
  private closed = false;
  private readonly detach: Array<() => void> = [];

  constructor(private readonly options: AmqpClientOptions = {}) {
    super();
    this.name = options.name ?? options.session?.name ?? DEFAULT_CONNECTION_NAME;
    this.logger = options.logger ?? createAmqpLogger(this.name);
    this.session = options.session ?? null;
    this.ownsSession = !options.session;
    this.amqpSerializer = options.serializer ?? new DefaultSerializer();
    this.amqpDeserializer = options.deserializer ?? new DefaultDeserializer();
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
    this._status$.next('disconnected');
  }

  unwrap<T = AmqpSession>(): T {
    if (!this.session) throw new Error('AmqpClient: not connected yet (no session)');
    return this.session as T;
  }

  /** Listen to the session's events ('connected', 'disconnected', 'reconnecting', 'recovered', ...). */
  override on(event: string, callback: (...args: never[]) => unknown): void {
    this.unwrap<AmqpSession>().on(event as keyof SessionEvents, callback as never);
  }

  /** Calls waiting for a reply. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  protected override normalizePattern(pattern: unknown): string {
    return routingKeyFromPattern(pattern);
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const pattern = this.normalizePattern(packet.pattern);
    const { data, options } = unwrapRecord(packet.data);
    let message: { exchange: string; routingKey: string; body: Buffer; properties: PublishOptions };
    try {
      message = this.buildMessage(pattern, data, options, false);
    } catch (err) {
      callback({ err });
      return () => undefined;
    }
    const correlationId = options.correlationId ?? randomUUID();
    const timeoutMs = options.timeout ?? this.options.timeout ?? DEFAULT_RPC_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (!this.pending.delete(correlationId)) return;
      callback({
        err: new TimeoutError(`no reply to '${pattern}' within ${timeoutMs} ms`, `send ${pattern}`, timeoutMs),
      });
    }, timeoutMs);
    this.pending.set(correlationId, { pattern, callback, timer });

    const fail = (err: unknown) => {
      const call = this.pending.get(correlationId);
      if (!call) return;
      this.pending.delete(correlationId);
      clearTimeout(call.timer);
      callback({ err });
    };
    this.replyChannel().then(
      (replies) =>
        replies
          .publish({
            exchange: message.exchange,
            routingKey: message.routingKey,
            body: message.body,
            options: { ...message.properties, correlationId },
            isWanted: () => this.pending.has(correlationId),
          })
          .catch(fail),
      fail,
    );
    // Unsubscribing (or a timeout) forgets the call: a late reply is dropped quietly, an unsent request is not sent.
    return () => {
      const call = this.pending.get(correlationId);
      if (!call) return;
      this.pending.delete(correlationId);
      clearTimeout(call.timer);
    };
  }

  protected async dispatchEvent<T = undefined>(packet: ReadPacket): Promise<T> {
    const session = await this.connect();
    const pattern = this.normalizePattern(packet.pattern);
    const { data, options } = unwrapRecord(packet.data);
    const m = this.buildMessage(pattern, data, options, true);
    await session.publish(m.exchange, m.routingKey, m.body, m.properties);
    return undefined as T;
  }

  private async start(): Promise<AmqpSession> {
    if (!this.session) {
      this.session = createSession({ ...this.options, name: this.name, logger: this.logger });
      await startSession(this.session, { ...this.options, name: this.name }, this.logger);
    }
    const session = this.session;
    this.watchStatus(session);
    return session;
  }

  private async replyChannel(): Promise<ReplyChannel> {
    const session = await this.connect();
    if (!this.replies) {
      const onReply = (m: Message) => this.onReply(m);
      const onLost = (err: Error) => this.failPending(err);
      this.replies =
        this.options.replyTo === 'queue'
          ? new QueueReplyChannel(session, onReply, onLost)
          : new DirectReplyChannel(session, onReply, onLost, this.logger);
    }
    return this.replies;
  }

  private onReply(m: Message): void {
    const id = m.properties.correlationId;
    const call = id === undefined ? undefined : this.pending.get(id);
    if (!call || id === undefined) {
      this.logger.debug?.(`dropped a reply nobody waits for (correlation id '${id ?? ''}')`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(call.timer);
    let value: unknown;
    let isError = false;
    try {
      const headers = m.properties.headers ?? {};
      isError = headers[WarrenHeaders.ERROR] === true || headers[WarrenHeaders.ERROR] === 'true';
      value = this.amqpDeserializer.deserialize(m.body, m.properties);
    } catch (err) {
      call.callback({ err });
      return;
    }
    if (isError) {
      call.callback({ err: new AmqpRpcError(fromErrorBody(value), call.pattern) });
      return;
    }
    call.callback({ response: value });
    call.callback({ isDisposed: true });
  }

  private failPending(err: Error): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) {
      clearTimeout(call.timer);
      call.callback({ err });
    }
  }

  private buildMessage(
    pattern: string,
    data: unknown,
    record: AmqpRecordOptions,
    isEvent: boolean,
  ): { exchange: string; routingKey: string; body: Buffer; properties: PublishOptions } {
    const o = this.options;
    const toQueue = o.queue !== undefined && record.exchange === undefined && (o.exchange ?? '') === '';
    const exchange = record.exchange ?? (toQueue ? '' : (o.exchange ?? ''));
    const routingKey = record.routingKey ?? (toQueue ? o.queue! : (o.routingKey ?? pattern));
    if (Buffer.byteLength(routingKey) > MAX_ROUTING_KEY_BYTES) {
      throw new Error(`routing key for pattern '${pattern}' is longer than ${MAX_ROUTING_KEY_BYTES} bytes`);
    }
    const serialized = this.amqpSerializer.serialize(data);
    const headers: FieldTable = { ...o.headers, ...record.headers };
    if (routingKey !== pattern) headers[WarrenHeaders.PATTERN] = pattern;
    const expiration = record.expiration ?? o.expiration;
    const timestamp = record.timestamp ?? new Date();
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
        messageId: record.messageId ?? randomUUID(),
        timestamp: timestamp instanceof Date ? timestamp : new Date(timestamp),
        type: record.type,
        appId: record.appId ?? o.appId,
        userId: record.userId,
      },
    };
  }

  private watchStatus(session: AmqpSession): void {
    const next = (status: AmqpClientStatus) => this._status$.next(status);
    if (session.isReady) next('connected');
    const connected = () => session.isReady && next('connected');
    const disconnected = () => next('disconnected');
    const reconnecting = () => next('reconnecting');
    session.on('connected', connected);
    session.on('recovered', connected);
    session.on('disconnected', disconnected);
    session.on('reconnecting', reconnecting);
    this.detach.push(() => {
      session.off('connected', connected);
      session.off('recovered', connected);
      session.off('disconnected', disconnected);
      session.off('reconnecting', reconnecting);
    });
  }
}
