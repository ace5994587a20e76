import { EventEmitter } from 'node:events';
import { AckDeferral } from './ack-ledger';
import type { AmqpConnection } from './connection';
import { Confirms, type ConfirmWaiter } from './confirms';
import {
  ConsumerRegistry,
  ConsumerStream,
  type Consumer,
  type ConsumeOptions,
  type ConsumerEntry,
  type ConsumerStart,
  type MessageHandler,
} from './consumer';
import { Deferred, WaiterList, withTimeout } from './deferred';
import {
  resolveExchangeOptions,
  resolveQueueOptions,
  type ExchangeOptions,
  type QueueOptions,
} from './declare-options';
import {
  AmqpError,
  ChannelError,
  ClosedError,
  EncodeError,
  MessageTooLargeError,
  NackError,
  ProtocolError,
  ReplyCode,
  TimeoutError,
  UnsupportedError,
  type OversizedMessage,
  type ReturnedMessage,
} from './errors';
import type { Message, MessageFields, PublishOptions } from './message';
import { ContentAssembler } from './protocol/content-assembler';
import type { FieldTable } from './protocol/field-table';
import { FRAME_BODY, FRAME_HEADER, FRAME_METHOD } from './protocol/frame-parser';
import { decodeMethod, methodName, type DecodedMethod } from './protocol/methods';
import type { DecodedProperties, MessageProperties } from './protocol/properties';
import { describeEndpoint, printAsJson } from './redact';
import { Reader } from './protocol/reader';
import type { SettleMethodId } from './protocol/frame-writer';
import {
  BASIC_DELIVER,
  decodeBasicDeliver,
  type MethodArgs,
  MethodId,
  type MethodName,
} from './protocol/spec.generated';

export type { ExchangeOptions, QueueOptions } from './declare-options';

/** The broker's answer to `queue.declare` (`queue.declare-ok`). */
export interface QueueDeclareResult {
  /** The queue's name: the one given, or the broker's generated name (`amq.gen-…`) for `''`. */
  queue: string;
  /** Messages ready in the queue (not counting unacked ones). */
  messageCount: number;
  /** Consumers on the queue. */
  consumerCount: number;
}

/** Options of a bind or unbind. */
export interface OperationOptions {
  /** Send without waiting for the broker's `-ok` (a refusal then closes the channel later). Default false. */
  noWait?: boolean;
  /** Binding arguments (headers exchanges: `{ 'x-match': 'all', ... }`). */
  arguments?: FieldTable;
  /** Milliseconds; default from the connection's operationTimeout. */
  timeout?: number;
}

/** Events of a {@link Channel}: `ch.on('return', (message) => ...)`. */
export type ChannelEvents = {
  /** The channel ended. `error` is undefined after an application `close()`. */
  close: [error: AmqpError | undefined];
  /** A basic.return (mandatory/immediate publish nobody took). */
  return: [message: ReturnedMessage];
  /** The broker cancelled a consumer. */
  cancel: [consumerTag: string];
  /** channel.flow from the broker. */
  flow: [active: boolean];
  /** A consumer callback threw or rejected. */
  consumerError: [error: unknown, message: Message];
  /**
   * A message over `maxMessageSize` arrived: its body was skipped unread and (unless no-ack) it was
   * rejected without requeue, so it is dead-lettered where the queue has a DLX. Logged as a warning too.
   */
  messageTooLarge: [message: OversizedMessage];
};

interface Rpc {
  name: MethodName;
  replies: readonly string[];
  frame: Buffer;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
  /** Runs synchronously when the reply is read, before any later frame (e.g. register a consumer). */
  onReply?: (m: DecodedMethod) => unknown;
  /** A basic.get: its queue, and whether its message expects an ack. */
  get?: { queue: string; expectsAck: boolean };
}

type ContentMethod =
  | { kind: 'deliver'; args: MethodArgs['basic.deliver'] }
  | { kind: 'get-ok'; args: MethodArgs['basic.get-ok'] }
  | { kind: 'return'; args: MethodArgs['basic.return'] };

const RESOLVED = Promise.resolve();
const EMPTY = Buffer.alloc(0);

/** Server capabilities (connection.start `capabilities`) that some methods need. */
const CAPABILITIES = [
  'exchange_exchange_bindings',
  'basic.nack',
  'publisher_confirms',
  'consumer_cancel_notify',
] as const;
type Capability = (typeof CAPABILITIES)[number];
const deliverReader = new Reader(Buffer.alloc(0));

/**
 * One AMQP channel: every 0-9-1 channel method, publisher confirms, returns and consumers.
 * Synchronous methods go out one at a time and are matched to their replies in order; a broker
 * channel error closes this channel only and rejects everything pending on it with a ChannelError.
 */
export class Channel extends EventEmitter<ChannelEvents> {
  private readonly rpcs: Rpc[] = [];
  private readonly assembler: ContentAssembler<ContentMethod>;
  private readonly consumers = new ConsumerRegistry(this);
  private confirms: Confirms | null = null;
  private state: 'opening' | 'open' | 'closing' | 'closed' = 'opening';
  private closeError: AmqpError | undefined;
  /** Set by close(): resolved by the broker's close-ok (or the channel's end). */
  private closeOk: Deferred | null = null;
  /** settle() callers, woken when no call or confirm is pending. */
  private readonly idleWaiters = new WaiterList();
  /** Acks of one tick leave together as one multiple ack (see AckLedger). */
  private readonly acks: AckDeferral;
  /** Capabilities the broker lacks, of those our methods need (see `require`). */
  private readonly unsupported: ReadonlySet<Capability>;

  /** @internal created by AmqpConnection.channel() */
  constructor(
    /** The connection the channel lives on. */
    readonly connection: AmqpConnection,
    /** The channel number (1 to the connection's `channelMax`). */
    readonly id: number,
  ) {
    super();
    this.assembler = new ContentAssembler(connection.options.maxMessageSize);
    this.acks = new AckDeferral(
      (deliveryTag, multiple) =>
        this.connection.send(
          this.connection.encoder.settle(this.id, MethodId.BASIC_ACK, deliveryTag, multiple ? 1 : 0),
        ),
      () => this.connection.deferAcks(this),
    );
    this.unsupported = unsupportedCapabilities(connection.serverProperties);
  }

  /** True between `channel.open-ok` and the channel's end (or `close()`). */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Why the channel ended (undefined while open or after an application close). */
  get closeReason(): AmqpError | undefined {
    return this.closeError;
  }

  /** True once {@link Channel.confirmSelect} was called: every publish then resolves on the broker's confirm. */
  get confirmMode(): boolean {
    return this.confirms !== null;
  }

  /** Publishes sent in confirm mode and not yet acked or nacked. */
  get unconfirmedCount(): number {
    return this.confirms?.unconfirmed ?? 0;
  }

  /** What `JSON.stringify` shows: its number, state and connection (no password), never the connection itself. */
  toJSON(): {
    /** The channel number. */
    id: number;
    /** `open` when {@link Channel.isOpen}. */
    state: 'opening' | 'open' | 'closing' | 'closed';
    /** {@link Channel.confirmMode}. */
    confirmMode: boolean;
    /** {@link Channel.unconfirmedCount}. */
    unconfirmed: number;
    /** Its connection's endpoint, as `describeEndpoint` gives it (no password). */
    connection: string;
  } {
    return {
      id: this.id,
      state: this.state,
      confirmMode: this.confirmMode,
      unconfirmed: this.unconfirmedCount,
      connection: describeEndpoint(this.connection.endpoint),
    };
  }

  /** @internal */
  async open(): Promise<void> {
    await this.call('channel.open', {}, ['channel.open-ok']);
    this.state = 'open';
  }

  // ---- exchanges ----

  /**
   * Declare an exchange (`exchange.declare`): durable unless `durable: false`. Options are checked before anything is
   * sent.
   *
   * @param type `direct`, `topic`, `fanout`, `headers`, or a plugin's type (`x-delayed-message`...).
   * @throws {@link ConfigError} for an unknown option, a bad value or an empty type.
   * @throws {@link ChannelError} when the broker refuses: 406 PRECONDITION_FAILED if it exists with other settings,
   *   404 NOT_FOUND for a `passive` declare of a missing exchange, 403 ACCESS_REFUSED. The channel is closed then.
   */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeOptions = {}): Promise<void> {
    const { timeout, ...declaration } = resolveExchangeOptions(exchange, type, options);
    await this.callOrSend('exchange.declare', { exchange, type, ...declaration }, 'exchange.declare-ok', timeout);
  }

  /**
   * Delete an exchange (`exchange.delete`); with `ifUnused`, only when it has no bindings (else a 406 channel error).
   */
  async exchangeDelete(
    exchange: string,
    options: { ifUnused?: boolean; noWait?: boolean; timeout?: number } = {},
  ): Promise<void> {
    const args = { exchange, ifUnused: options.ifUnused ?? false, noWait: options.noWait ?? false };
    await this.callOrSend('exchange.delete', args, 'exchange.delete-ok', options.timeout);
  }

  /** Exchange-to-exchange binding (RabbitMQ extension): messages flow from `source` to `destination`. */
  async exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    options: OperationOptions = {},
  ): Promise<void> {
    await this.exchangeBinding('exchange.bind', destination, source, routingKey, options);
  }

  /** Remove an exchange-to-exchange binding (RabbitMQ extension); same arguments as {@link Channel.exchangeBind}. */
  async exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    options: OperationOptions = {},
  ): Promise<void> {
    await this.exchangeBinding('exchange.unbind', destination, source, routingKey, options);
  }

  private async exchangeBinding(
    method: 'exchange.bind' | 'exchange.unbind',
    destination: string,
    source: string,
    routingKey: string,
    options: OperationOptions,
  ): Promise<void> {
    this.require('exchange_exchange_bindings', method);
    const args = {
      destination,
      source,
      routingKey,
      noWait: options.noWait ?? false,
      arguments: options.arguments ?? {},
    };
    await this.callOrSend(method, args, `${method}-ok`, options.timeout);
  }

  // ---- queues ----

  /**
   * Declare a queue; `''` asks the broker for a generated name (returned in `queue`). Named queues are durable by
   * default, server-named ones not. Options (shorthands such as `type: 'quorum'` included) are checked before
   * anything is sent.
   *
   * @throws {@link ConfigError} for an unknown option, a bad value, a shorthand contradicting its `arguments` entry, or
   *   a quorum/stream queue that is not durable, or is exclusive or auto-delete.
   * @throws {@link ChannelError} when the broker refuses: 406 PRECONDITION_FAILED if the queue exists with other
   *   settings, 405 RESOURCE_LOCKED if another connection holds it exclusively, 404 for a `passive` declare of a
   *   missing queue. The channel is closed then.
   */
  async queueDeclare(queue = '', options: QueueOptions = {}): Promise<QueueDeclareResult> {
    const { timeout, ...declaration } = resolveQueueOptions(queue, options);
    const reply = await this.callOrSend('queue.declare', { queue, ...declaration }, 'queue.declare-ok', timeout);
    if (!reply) return { queue, messageCount: 0, consumerCount: 0 };
    return reply as QueueDeclareResult;
  }

  /**
   * Bind a queue to an exchange: messages published to `exchange` whose routing key matches `routingKey` (topic
   * patterns: `*` one word, `#` zero or more) reach `queue`. A 404 channel error when either does not exist.
   */
  async queueBind(queue: string, exchange: string, routingKey = '', options: OperationOptions = {}): Promise<void> {
    const args = { queue, exchange, routingKey, noWait: options.noWait ?? false, arguments: options.arguments ?? {} };
    await this.callOrSend('queue.bind', args, 'queue.bind-ok', options.timeout);
  }

  /** Remove a binding made by {@link Channel.queueBind} (same queue, exchange, routing key and arguments). */
  async queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    options: Omit<OperationOptions, 'noWait'> = {},
  ): Promise<void> {
    await this.call(
      'queue.unbind',
      { queue, exchange, routingKey, arguments: options.arguments ?? {} },
      ['queue.unbind-ok'],
      options.timeout,
    );
  }

  /** Remove all ready messages; resolves with how many were purged. */
  async queuePurge(
    queue: string,
    options: { noWait?: boolean; timeout?: number } = {},
  ): Promise<{
    /** Messages purged. */
    messageCount: number;
  }> {
    const reply = await this.callOrSend(
      'queue.purge',
      { queue, noWait: options.noWait ?? false },
      'queue.purge-ok',
      options.timeout,
    );
    return (reply as { messageCount: number } | undefined) ?? { messageCount: 0 };
  }

  /**
   * Delete a queue and its messages; with `ifUnused` / `ifEmpty`, only when it has no consumers / no messages (else a
   * 406 channel error). Resolves with how many messages were deleted.
   */
  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean; noWait?: boolean; timeout?: number } = {},
  ): Promise<{
    /** Messages deleted with the queue. */
    messageCount: number;
  }> {
    const args = {
      queue,
      ifUnused: options.ifUnused ?? false,
      ifEmpty: options.ifEmpty ?? false,
      noWait: options.noWait ?? false,
    };
    const reply = await this.callOrSend('queue.delete', args, 'queue.delete-ok', options.timeout);
    return (reply as { messageCount: number } | undefined) ?? { messageCount: 0 };
  }

  // ---- basic ----

  /** Prefetch: at most `prefetchCount` unacked messages per consumer (or per channel with `global`). */
  async qos(
    prefetchCount: number,
    global = false,
    options: { prefetchSize?: number; timeout?: number } = {},
  ): Promise<void> {
    if (!Number.isInteger(prefetchCount) || prefetchCount < 0 || prefetchCount > 65535) {
      throw new EncodeError('prefetchCount', `expected an integer 0..65535, got ${prefetchCount}`);
    }
    await this.call(
      'basic.qos',
      { prefetchSize: options.prefetchSize ?? 0, prefetchCount, global },
      ['basic.qos-ok'],
      options.timeout,
    );
  }

  /**
   * Start a consumer. With a handler: resolves with the Consumer once the broker confirms it.
   * Without one: returns a ConsumerStream to use with `for await`.
   */
  consume(queue: string, handler: MessageHandler, options?: ConsumeOptions): Promise<Consumer>;
  consume(queue: string, options?: ConsumeOptions): ConsumerStream;
  consume(
    queue: string,
    handlerOrOptions?: MessageHandler | ConsumeOptions,
    maybeOptions: ConsumeOptions = {},
  ): Promise<Consumer> | ConsumerStream {
    if (typeof handlerOrOptions === 'function') {
      const handler = handlerOrOptions;
      const options = maybeOptions;
      return this.startConsumer(queue, options, this.consumers.handlerEntry(queue, handler));
    }
    const options = handlerOrOptions ?? {};
    return new ConsumerStream((entry) => this.startConsumer(queue, options, entry), queue);
  }

  /** Cancel a consumer (`basic.cancel`): no more deliveries; unacked ones can still be acked on this channel. */
  async cancel(consumerTag: string, options: { noWait?: boolean; timeout?: number } = {}): Promise<void> {
    if (options.noWait) {
      this.sendNow('basic.cancel', { consumerTag, noWait: true });
      this.consumers.remove(consumerTag);
      return;
    }
    await this.call('basic.cancel', { consumerTag, noWait: false }, ['basic.cancel-ok'], options.timeout, (m) => {
      if (m.name === 'basic.cancel-ok') this.consumers.remove(m.args.consumerTag);
    });
  }

  /** Fetch one message, or null when the queue is empty. */
  async get(queue: string, options: { noAck?: boolean; timeout?: number } = {}): Promise<Message | null> {
    // get-ok settles when its content is complete (onContent); get-empty settles here with null.
    const noAck = options.noAck ?? false;
    const reply = await this.call(
      'basic.get',
      { queue, noAck },
      ['basic.get-ok', 'basic.get-empty'],
      options.timeout,
      () => null,
      { queue, expectsAck: !noAck },
    );
    return (reply as Message | undefined) ?? null;
  }

  /**
   * Publish a message. In confirm mode the promise resolves when the broker acks it and rejects
   * with NackError (nack), UnroutableError (mandatory and returned) or ChannelError/ConnectionError
   * (closed before confirm). Without confirms it resolves once written, waiting for the socket to
   * drain when its buffer is full — await it and a publishing loop stays memory-bounded.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer | Uint8Array | string,
    options?: PublishOptions,
  ): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    const blocked = this.connection.waitUntilUnblocked();
    if (blocked) return blocked.then(() => this.publish(exchange, routingKey, body, options));
    let content: Buffer;
    if (Buffer.isBuffer(body)) content = body;
    else if (typeof body === 'string') content = Buffer.from(body, 'utf8');
    else if (body instanceof Uint8Array) content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else return Promise.reject(new EncodeError('body', `expected a Buffer, Uint8Array or string, got ${typeof body}`));

    let frames: Buffer | Buffer[];
    try {
      frames = this.encodePublish(exchange, routingKey, content, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const confirms = this.confirms;
    if (confirms === null) {
      return this.connection.send(frames) ? this.connection.waitForDrain() : RESOLVED;
    }
    return new Promise<void>((resolve, reject) =>
      this.sendConfirmed(confirms, frames, exchange, routingKey, options, { onConfirm: resolve, onFail: reject }),
    );
  }

  /**
   * @internal Confirm-mode publish for the session's hot path: `waiter` is told the outcome (the
   * broker's ack, nack or return, or the channel's end) instead of a promise per publish. Off the
   * hot path (channel not open, no confirm mode, connection blocked) it defers to `publish`; a
   * message that cannot be encoded fails the waiter asynchronously, as a rejection would.
   */
  publishAwaiting(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions | undefined,
    waiter: ConfirmWaiter,
  ): void {
    const confirms = this.confirms;
    if (this.state !== 'open' || confirms === null || this.connection.isBlocked) {
      this.publish(exchange, routingKey, body, options).then(
        () => waiter.onConfirm(),
        (err: unknown) => waiter.onFail(err instanceof Error ? err : new Error(String(err))),
      );
      return;
    }
    let frames: Buffer | Buffer[];
    try {
      frames = this.encodePublish(exchange, routingKey, body, options);
    } catch (err) {
      queueMicrotask(() => waiter.onFail(err instanceof Error ? err : new Error(String(err))));
      return;
    }
    this.sendConfirmed(confirms, frames, exchange, routingKey, options, waiter);
  }

  /** Register a confirm-mode publish (and, if mandatory, where a return would come from), then send it. */
  private sendConfirmed(
    confirms: Confirms,
    frames: Buffer | Buffer[],
    exchange: string,
    routingKey: string,
    options: PublishOptions | undefined,
    waiter: ConfirmWaiter,
  ): void {
    confirms.add(waiter, options?.mandatory === true, exchange, routingKey);
    this.connection.send(frames);
  }

  /**
   * @internal Publish on a channel that is not in confirm mode, without a promise: the frames are
   * queued for the next write. Throws what `publish` would reject with (closed channel, bad input).
   * For replies and requests, whose answer is the confirmation: it ignores socket backpressure, so
   * callers bound what they send by other means (prefetch, calls in flight).
   */
  publishUnconfirmed(exchange: string, routingKey: string, body: Buffer, options?: PublishOptions): void {
    if (this.state !== 'open') throw this.closedError();
    // A confirm channel numbers every publish: one sent past the bookkeeping would shift all later tags.
    if (this.confirms !== null) throw new AmqpError(`channel ${this.id} is in confirm mode: use publish()`);
    this.connection.send(this.encodePublish(exchange, routingKey, body, options));
  }

  /** basic.publish + content header + body frames; throws EncodeError on bad input. */
  private encodePublish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions | undefined,
  ): Buffer | Buffer[] {
    // `persistent` is read by the header encoder (deliveryMode 2 unless one is given): no options copy.
    const props: MessageProperties | undefined = options;
    return this.connection.encoder.publish(
      this.id,
      exchange,
      routingKey,
      options?.mandatory ?? false,
      options?.immediate ?? false,
      props,
      body,
    );
  }

  /** Acknowledge a message (or, with `multiple`, every unacked one up to it). */
  ack(message: Message | number, multiple = false): void {
    const tag = tagOf(message);
    // A single ack of a delivery this channel tracks waits for the connection's next write, where the
    // tick's acks are coalesced (AckLedger). Everything else goes out now, after any deferred acks.
    if (!multiple && this.state === 'open' && this.acks.defer(tag)) return;
    this.settleNow(MethodId.BASIC_ACK, tag, multiple ? 1 : 0, multiple);
  }

  /**
   * Negative acknowledgement (RabbitMQ extension); `requeue` defaults to true. Throws UnsupportedError
   * when the broker does not announce `basic.nack`.
   */
  nack(message: Message | number, multiple = false, requeue = true): void {
    this.require('basic.nack', 'basic.nack');
    this.settleNow(MethodId.BASIC_NACK, tagOf(message), (multiple ? 1 : 0) | (requeue ? 2 : 0), multiple);
  }

  /**
   * Reject one message (`basic.reject`): requeued by default; with `requeue: false` it is dropped or dead-lettered
   * (where its queue has a DLX).
   */
  reject(message: Message | number, requeue = true): void {
    this.settleNow(MethodId.BASIC_REJECT, tagOf(message), requeue ? 1 : 0, false);
  }

  /** Redeliver every unacked message on this channel. */
  async recover(requeue = true, options: { timeout?: number } = {}): Promise<void> {
    const done = this.call('basic.recover', { requeue }, ['basic.recover-ok'], options.timeout);
    // Every unacked delivery is requeued: their tags are void.
    this.acks.clear();
    await done;
  }

  /** Deprecated asynchronous form of recover. */
  recoverAsync(requeue = true): void {
    this.sendNow('basic.recover-async', { requeue });
    this.acks.clear();
  }

  /** @internal The connection is about to write: send this channel's deferred acks. */
  flushDeferredAcks(): void {
    this.acks.scheduledFlush(this.state === 'open');
  }

  /** Enter publisher-confirm mode: every later publish resolves on the broker's ack. */
  async confirmSelect(options: { noWait?: boolean; timeout?: number } = {}): Promise<void> {
    if (this.confirms) return;
    this.require('publisher_confirms', 'confirm.select');
    this.confirms = new Confirms(this.connection.options.confirmTimeoutMs, () => this.checkIdle());
    try {
      // The spec spells this one field `nowait`.
      if (options.noWait) this.sendNow('confirm.select', { nowait: true });
      else await this.call('confirm.select', { nowait: false }, ['confirm.select-ok'], options.timeout);
    } catch (err) {
      this.confirms = null;
      throw err;
    }
  }

  /**
   * Enter transaction mode (`tx.select`): publishes and acks take effect on {@link Channel.txCommit}. Acks in a
   * transaction go out at once (never deferred). Not combinable with confirm mode.
   */
  async txSelect(options: { timeout?: number } = {}): Promise<void> {
    this.acks.enterTxMode();
    await this.call('tx.select', {}, ['tx.select-ok'], options.timeout);
  }
  /** Commit the current transaction's publishes and acks (`tx.commit`). */
  async txCommit(options: { timeout?: number } = {}): Promise<void> {
    await this.call('tx.commit', {}, ['tx.commit-ok'], options.timeout);
  }
  /** Discard the current transaction's publishes and acks (`tx.rollback`). */
  async txRollback(options: { timeout?: number } = {}): Promise<void> {
    await this.call('tx.rollback', {}, ['tx.rollback-ok'], options.timeout);
  }

  /** Ask the broker to pause (false) or resume (true) deliveries to this channel. Resolves with the broker's answer. */
  async flow(active: boolean, options: { timeout?: number } = {}): Promise<boolean> {
    const reply = await this.call('channel.flow', { active }, ['channel.flow-ok'], options.timeout);
    return (reply as { active: boolean }).active;
  }

  /** Resolves when no synchronous method or confirm is pending on this channel. */
  settle(): Promise<void> {
    if (this.isIdle()) return RESOLVED;
    return this.idleWaiters.wait();
  }

  /** Graceful close: let pending operations and confirms settle, then channel.close → close-ok. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    await this.settle();
    if (this.state !== 'open') return;
    // Acks made before close() count: they leave ahead of channel.close.
    this.acks.flush();
    this.state = 'closing';
    const closeOk = (this.closeOk = new Deferred());
    this.connection.sendMethod(this.id, 'channel.close', {
      replyCode: ReplyCode.REPLY_SUCCESS,
      replyText: 'Goodbye',
      classId: 0,
      methodId: 0,
    });
    // A broker that never answers does not hold the close: the channel ends either way.
    const ms = this.connection.options.operationTimeoutMs;
    await withTimeout(closeOk.promise, ms, 'channel.close').catch((err: Error) =>
      this.connection.logger.debug?.(`channel ${this.id}: ${err.message}; closed without close-ok`),
    );
    this.ended(undefined);
  }

  // ---- frames in (from the connection) ----

  /** @internal A frame for this channel: its payload is `buf[start, end)`. */
  onFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.state === 'closed') {
      // We sent channel.close (after a timeout) and await close-ok: the spec says to discard every
      // other frame (late replies, deliveries and their content) instead of treating it as an error.
      if (type === FRAME_METHOD) {
        const m = decodeMethod(buf.subarray(start, end));
        if (m.name === 'channel.close-ok' || m.name === 'channel.close') this.onMethod(m);
      }
      return;
    }
    if (type === FRAME_METHOD) {
      if (this.assembler.busy)
        throw new ProtocolError('method frame while content was expected', ReplyCode.UNEXPECTED_FRAME);
      // basic.deliver? Its id from the payload's first four bytes (readUInt32BE's argument checks cost more).
      if (
        end - start >= 4 &&
        ((buf[start] << 24) | (buf[start + 1] << 16) | (buf[start + 2] << 8) | buf[start + 3]) === BASIC_DELIVER
      ) {
        // Hot path: decode basic.deliver in place; its fields object becomes the message's `fields`.
        const args = decodeBasicDeliver(deliverReader.reset(buf, start + 4, end));
        this.assembler.start({ kind: 'deliver', args });
        return;
      }
      this.onMethod(decodeMethod(buf.subarray(start, end)));
      return;
    }
    // Header frames are decoded in place; only a body becomes a view (the message's zero-copy body).
    const done =
      type === FRAME_HEADER
        ? this.assembler.headerAt(buf, start, end)
        : type === FRAME_BODY
          ? this.assembler.bodyFrame(buf.subarray(start, end))
          : null;
    if (done === null) return;
    if (done.skippedSize > 0) this.onOversized(done.method, done.properties, done.skippedSize);
    else
      this.onContent(done.method, {
        body: done.body,
        properties: done.properties,
        fields: done.method.args as MessageFields,
      });
  }

  private onContent(method: ContentMethod, message: Message): void {
    if (this.state === 'closed') return;
    switch (method.kind) {
      case 'deliver': {
        const entry = this.consumers.get(method.args.consumerTag);
        if (entry) {
          if (entry.noAck !== true) this.acks.delivered(method.args.deliveryTag);
          entry.deliver(message);
        } else {
          this.connection.logger.warn(
            `delivery for unknown consumer ${method.args.consumerTag} on channel ${this.id}: requeued`,
          );
          this.reject(method.args.deliveryTag, true);
        }
        return;
      }
      case 'get-ok':
        if (this.rpcs[0]?.get?.expectsAck) this.acks.delivered(method.args.deliveryTag);
        this.settleRpc(message);
        return;
      case 'return': {
        const a = method.args;
        const returned: ReturnedMessage = {
          replyCode: a.replyCode,
          replyText: a.replyText,
          exchange: a.exchange,
          routingKey: a.routingKey,
          body: message.body,
          properties: message.properties.toJSON() as Record<string, unknown>,
        };
        this.confirms?.matchReturn(returned);
        this.emit('return', returned);
        return;
      }
    }
  }

  /**
   * A message whose body was over maxMessageSize (skipped unread): reject it without requeue so the
   * broker dead-letters it instead of redelivering it, and report it. The channel stays open.
   */
  private onOversized(method: ContentMethod, properties: DecodedProperties, size: number): void {
    if (this.state === 'closed') return;
    const a = method.args;
    const oversized: OversizedMessage = {
      kind: method.kind === 'get-ok' ? 'get' : method.kind,
      size,
      limit: this.connection.options.maxMessageSize,
      exchange: a.exchange,
      routingKey: a.routingKey,
    };
    if (properties.messageId !== undefined) oversized.messageId = properties.messageId;
    let outcome: string;
    let failedGet: MessageTooLargeError | null = null;
    switch (method.kind) {
      case 'deliver':
      case 'get-ok': {
        const entry = method.kind === 'deliver' ? this.consumers.get(method.args.consumerTag) : undefined;
        const get = method.kind === 'get-ok' ? this.rpcs[0]?.get : undefined;
        const queue = entry?.queue ?? get?.queue;
        if (queue !== undefined) oversized.queue = queue;
        oversized.deliveryTag = method.args.deliveryTag;
        const expectsAck = method.kind === 'deliver' ? entry?.noAck !== true : get?.expectsAck === true;
        if (!expectsAck) outcome = 'dropped (no-ack)';
        else if (this.state !== 'open') outcome = 'left to the closing channel (requeued by the broker)';
        else {
          this.reject(method.args.deliveryTag, false);
          outcome = 'rejected without requeue (dead-lettered if the queue has a DLX)';
        }
        if (method.kind === 'get-ok') failedGet = new MessageTooLargeError(oversized);
        break;
      }
      case 'return':
        // No body to hand out, but a mandatory publish it answers must still fail as unroutable.
        this.confirms?.matchReturn({
          replyCode: method.args.replyCode,
          replyText: method.args.replyText,
          exchange: a.exchange,
          routingKey: a.routingKey,
          body: EMPTY,
          properties: properties.toJSON() as Record<string, unknown>,
        });
        outcome = 'return dropped';
        break;
    }
    this.connection.logger.warn(
      `message of ${size} bytes over maxMessageSize ${oversized.limit} on channel ${this.id} ` +
        `(queue '${oversized.queue ?? ''}', exchange '${oversized.exchange}', routing key '${oversized.routingKey}', ` +
        `message id '${oversized.messageId ?? ''}', delivery tag ${oversized.deliveryTag ?? '-'}): body skipped, ${outcome}`,
    );
    this.emit('messageTooLarge', oversized);
    if (failedGet) this.settleRpc(undefined, failedGet);
  }

  private onMethod(m: DecodedMethod): void {
    switch (m.name) {
      case 'basic.get-ok':
        this.assembler.start({ kind: 'get-ok', args: m.args });
        return;
      case 'basic.return':
        this.assembler.start({ kind: 'return', args: m.args });
        return;
      case 'basic.ack':
        this.confirms?.ack(m.args.deliveryTag, m.args.multiple);
        this.checkIdle();
        return;
      case 'basic.nack':
        this.confirms?.nack(m.args.deliveryTag, m.args.multiple, (tag) => new NackError(tag));
        this.checkIdle();
        return;
      case 'basic.cancel': {
        // Consumer cancel notification: the queue went away.
        const tag = m.args.consumerTag;
        if (!m.args.noWait) this.connection.sendMethod(this.id, 'basic.cancel-ok', { consumerTag: tag });
        this.consumers.cancelledByServer(tag);
        this.emit('cancel', tag);
        return;
      }
      case 'channel.flow':
        this.connection.sendMethod(this.id, 'channel.flow-ok', { active: m.args.active });
        this.emit('flow', m.args.active);
        return;
      case 'channel.close': {
        this.connection.sendMethod(this.id, 'channel.close-ok', {});
        const { replyCode, replyText, classId, methodId } = m.args;
        const failed = classId ? { classId, methodId, methodName: methodName(classId, methodId) } : undefined;
        const err = new ChannelError(
          `channel ${this.id} closed by the broker: ${replyCode} ${replyText}`,
          replyCode,
          replyText,
          failed,
        );
        this.ended(err);
        return;
      }
      case 'channel.close-ok':
        if (this.closeOk) this.closeOk.resolve();
        else this.release();
        return;
      default:
        if (this.rpcs.length > 0 && this.rpcs[0].replies.includes(m.name)) {
          const rpc = this.rpcs[0];
          const value = rpc.onReply ? rpc.onReply(m) : m.args;
          this.settleRpc(value);
          return;
        }
        throw new ProtocolError(`unexpected ${m.name} on channel ${this.id}`, ReplyCode.COMMAND_INVALID);
    }
  }

  /** @internal The connection ended: everything pending fails with its reason. */
  connectionClosed(err: AmqpError): void {
    this.ended(err, false);
  }

  // ---- internals ----

  private startConsumer(queue: string, options: ConsumeOptions, entry: ConsumerEntry): Promise<Consumer> {
    let start: ConsumerStart;
    try {
      // onCancel could never fire on a broker that does not notify cancellations.
      if (options.onCancel) this.require('consumer_cancel_notify', 'basic.consume with onCancel');
      start = this.consumers.prepare(queue, options, entry);
    } catch (err) {
      return Promise.reject(err);
    }
    if (start.args.noWait) {
      start.register(start.args.consumerTag);
      this.sendNow('basic.consume', start.args);
      return Promise.resolve(start.consumer);
    }
    return this.call('basic.consume', start.args, ['basic.consume-ok'], undefined, (m) =>
      m.name === 'basic.consume-ok' ? start.register(m.args.consumerTag) : start.consumer,
    ) as Promise<Consumer>;
  }

  /** A synchronous method, or its no-wait form when the caller asked for it. */
  private async callOrSend<N extends MethodName>(
    name: N,
    args: MethodArgs[N] & { noWait: boolean },
    reply: MethodName,
    timeout?: number,
  ): Promise<unknown> {
    if (args.noWait) {
      this.sendNow(name, args);
      return undefined;
    }
    return this.call(name, args, [reply], timeout);
  }

  /**
   * A settlement that cannot wait: deferred acks leave first, so the broker sees settlements in call
   * order (a second ack of a tag is judged after the first, as sent).
   */
  private settleNow(methodId: SettleMethodId, deliveryTag: number, bits: number, multiple: boolean): void {
    this.acks.flush();
    this.settleDelivery(methodId, deliveryTag, bits);
    this.acks.settled(deliveryTag, multiple);
  }

  /** ack / reject / nack through the encoder's allocation-free path. */
  private settleDelivery(methodId: SettleMethodId, deliveryTag: number, bits: number): void {
    if (this.state === 'closed' || this.state === 'closing') throw this.closedError();
    if (!Number.isSafeInteger(deliveryTag) || deliveryTag < 0) {
      throw new EncodeError('deliveryTag', `expected a non-negative integer, got ${deliveryTag}`);
    }
    this.connection.send(this.connection.encoder.settle(this.id, methodId, deliveryTag, bits));
  }

  /** Send a method now (asynchronous methods and no-wait forms). */
  private sendNow<N extends MethodName>(name: N, args: MethodArgs[N]): void {
    if (this.state === 'closed' || this.state === 'closing') throw this.closedError();
    this.acks.flush();
    this.connection.sendMethod(this.id, name, args);
  }

  /**
   * Queue a synchronous method. Only the head of the queue is on the wire; its reply sends the next.
   * A timeout rejects with TimeoutError naming the method and closes the channel: once a reply is
   * missing, later replies can no longer be matched to their requests.
   */
  private call<N extends MethodName>(
    name: N,
    args: MethodArgs[N],
    replies: readonly MethodName[],
    timeout?: number,
    onReply?: (m: DecodedMethod) => unknown,
    get?: Rpc['get'],
  ): Promise<unknown> {
    if (this.state === 'closed' || this.state === 'closing') return Promise.reject(this.closedError());
    this.acks.flush();
    let frame: Buffer;
    try {
      frame = this.connection.encoder.method(this.id, name, args);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const rpc: Rpc = { name, replies, frame, resolve, reject, onReply, get };
      const ms = timeout ?? this.connection.options.operationTimeoutMs;
      if (ms > 0) {
        rpc.timer = setTimeout(() => this.timedOut(rpc, ms), ms);
        rpc.timer.unref?.();
      }
      this.rpcs.push(rpc);
      if (this.rpcs.length === 1) this.connection.send(frame);
    });
  }

  /** The head call got its reply: resolve it with `value` (or reject it with `failure`), send the next. */
  private settleRpc(value: unknown, failure?: Error): void {
    const rpc = this.rpcs.shift();
    if (!rpc) throw new ProtocolError(`unexpected reply on channel ${this.id}`, ReplyCode.COMMAND_INVALID);
    clearTimeout(rpc.timer);
    if (failure) rpc.reject(failure);
    else rpc.resolve(value);
    const next = this.rpcs[0];
    if (next) this.connection.send(next.frame);
    this.checkIdle();
  }

  private timedOut(rpc: Rpc, ms: number): void {
    const err = new TimeoutError(`${rpc.name} on channel ${this.id} got no reply within ${ms} ms`, rpc.name, ms);
    rpc.reject(err);
    this.rpcs.splice(this.rpcs.indexOf(rpc), 1);
    // The request/response sequence can no longer be trusted: close the channel.
    if (this.state === 'open' || this.state === 'opening') {
      this.connection.sendMethod(this.id, 'channel.close', {
        replyCode: ReplyCode.REPLY_SUCCESS,
        replyText: 'request timed out',
        classId: 0,
        methodId: 0,
      });
      this.ended(err, true);
    }
  }

  /** Throw UnsupportedError, before anything is sent or recorded, when the broker lacks `capability`. */
  private require(capability: Capability, operation: string): void {
    if (this.unsupported.size > 0 && this.unsupported.has(capability)) {
      throw new UnsupportedError(capability, operation);
    }
  }

  private isIdle(): boolean {
    return this.rpcs.length === 0 && (this.confirms?.unconfirmed ?? 0) === 0;
  }

  private checkIdle(): void {
    if (this.idleWaiters.size > 0 && this.isIdle()) this.idleWaiters.resolveAll();
  }

  private closedError(): AmqpError {
    return this.closeError ?? new ClosedError(`channel ${this.id} is closed`);
  }

  /**
   * The channel is finished: reject pending calls and confirms, end consumers, emit `close`.
   * `awaitCloseOk`: keep the channel number reserved until the broker's close-ok arrives.
   */
  private ended(err: AmqpError | undefined, awaitCloseOk = false): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = err;
    // A close() waiting for close-ok is done too: the connection that would carry it is gone.
    if (!awaitCloseOk) this.closeOk?.resolve();
    const failure = err ?? new ClosedError(`channel ${this.id} is closed`);
    for (const rpc of this.rpcs.splice(0)) {
      clearTimeout(rpc.timer);
      rpc.reject(failure);
    }
    this.confirms?.failAll(failure);
    this.acks.clear();
    this.assembler.reset();
    this.consumers.endAll(failure);
    this.idleWaiters.resolveAll();
    if (!awaitCloseOk) this.release();
    this.emit('close', err);
  }

  private release(): void {
    this.connection.releaseChannel(this.id);
  }
}

/**
 * Which needed capabilities the broker lacks. A broker that sends a `capabilities` table (RabbitMQ
 * always does) supports only what it lists as true; one that sends no table at all is not second-guessed.
 */
function unsupportedCapabilities(serverProperties: FieldTable): ReadonlySet<Capability> {
  const caps = serverProperties.capabilities;
  if (caps === undefined) return new Set();
  const table = caps !== null && typeof caps === 'object' && !Array.isArray(caps) && !Buffer.isBuffer(caps) ? caps : {};
  return new Set(CAPABILITIES.filter((c) => (table as FieldTable)[c] !== true));
}

function tagOf(message: Message | number): number {
  return typeof message === 'number' ? message : message.fields.deliveryTag;
}

// `util.inspect` prints it as its toJSON().
printAsJson(Channel, 'Channel');
