import type { MessageHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import type { AmqpSession, FieldTable, Logger, PublishOptions, SessionConsumer, SessionMessage } from '../../amqp';
import { WaiterList } from '../../amqp/deferred';
import { WarrenHeaders } from '../amqp.constants';
import { describeError } from '../amqp.logger';
import { AmqpBatchContext } from '../ctx-host/amqp-batch.context';
import { AmqpContext } from '../ctx-host/amqp.context';
import type { RetryPublisher } from '../retry/retry-publisher';
import type { PayloadIssue } from '../schema/json-schema-subset';
import { describeIssues, validationFailure } from '../schema/payload-schema';
import { BatchCollector } from './batch-collector';
import { encodeReply, STREAM_END_REPLY } from './reply-body';
import { STREAMED, StreamFailure, streamReplies } from './reply-stream';
import { Settlement } from './settlement';
import { warrenTelemetry, type ProcessTrace } from '../telemetry/telemetry';
import type { QueuePlan, Route } from './handler-routes';
import { describeFailure, failureText, type HandlerFailure } from './handler-failure';
import { toErrorEnvelope, type RpcErrorEnvelope } from './rpc-error';

/** What a queue consumer needs from its server. */
export interface ConsumerHost {
  readonly session: AmqpSession;
  readonly logger: Logger;
  readonly retries: RetryPublisher;
  /**
   * Runs a Nest handler; returns what it returned (a value, a Promise or an Observable). The consumer waits for the
   * Promise and takes the last value of an Observable (undefined if it emits none).
   */
  invoke(handler: MessageHandler, data: unknown, ctx: AmqpContext | AmqpBatchContext): unknown;
}

/**
 * Work waiting for a free handler slot (concurrency): one message (`msg`), or a batch for its handler; `done` settles
 * the promise the session waits for.
 */
interface Waiting {
  start: () => Promise<Held | void>;
  msg?: SessionMessage;
  done: () => void;
}

/** A message handed to a batch: its slot is free, its delivery is done once `until` resolves. */
interface Held {
  until: Promise<void>;
}

/** One message of a batch: what its handler gets, and what settles it. */
interface BatchEntry {
  msg: SessionMessage;
  data: unknown;
  pattern: string;
  ctx: AmqpContext;
  settlement: Settlement;
}

/**
 * One consumer on one queue: dispatches each message to the handler of its pattern, runs at most `concurrency`
 * handlers at once, replies to requests, settles per the route's ack mode, and hands failed events to the retry
 * policy. `stop()` cancels the consumer at once and lets running handlers finish; messages it did not start are never
 * acked (the broker requeues them when the consumer's channel closes).
 *
 * A batch route's messages wait in its BatchCollector without holding a handler slot; a full (or timed out) batch
 * takes one slot for its handler call. `stop()` hands every open batch to its handler at once.
 *
 * Each delivery's promise, handed back to the session, settles when the message is done with (handled, or left for
 * the broker to redeliver): that is what the session's draining cancel waits for before it closes the channel.
 */
export class QueueConsumer {
  private consumer: SessionConsumer | null = null;
  private running = 0;
  private readonly waiting: Waiting[] = [];
  private stopping = false;
  private readonly idleWaiters = new WaiterList();
  private readonly batches = new Map<Route, BatchCollector<BatchEntry>>();
  private readonly telemetry = warrenTelemetry();

  constructor(
    readonly plan: QueuePlan,
    private readonly host: ConsumerHost,
  ) {}

  /** The queue's current name (server-named queues are renamed on recovery). */
  get queue(): string {
    return this.consumer?.queue ?? this.plan.queue.name;
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.running;
  }

  async start(): Promise<void> {
    const { prefetch, noAck, priority, offset, offsetStore } = this.plan;
    this.consumer = await this.host.session.consume(this.plan.queue.name, (m) => this.onMessage(m), {
      prefetch,
      noAck,
      priority,
      offset,
      offsetStore,
      onCancel: () =>
        this.host.logger.warn(`the broker cancelled the consumer of queue '${this.queue}' (queue deleted?)`),
    });
  }

  /**
   * Stop: cancel the consumer at once (the broker delivers nothing more), let running handlers finish within
   * timeoutMs (their acks still count: the channel stays open until then), then close the channel, which returns the
   * messages nobody started to the queue. Resolves true when every handler finished in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    const deadline = Date.now() + timeoutMs;
    // Ack mode: messages waiting for a slot are not started; they go back to the queue with the channel. No-ack
    // messages are ours already: they still run. Batches hold messages already handed to their handler: they run,
    // open ones at once.
    if (!this.plan.noAck) {
      const unstarted = this.waiting.filter((w) => w.msg);
      this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((w) => !w.msg));
      for (const w of unstarted) w.done();
    }
    for (const b of this.batches.values()) b.flush();
    const consumer = this.consumer;
    await consumer
      ?.cancel({ drainTimeoutMs: timeoutMs })
      .catch((err: unknown) =>
        this.host.logger.warn(`queue '${this.queue}': cancelling the consumer failed: ${describeError(err)}`),
      );
    // The session waits only while the channel lives: handlers of a channel lost meanwhile get the rest of the time.
    const drained = await this.whenIdle(Math.max(0, deadline - Date.now()));
    if (!drained) {
      this.host.logger.warn(
        `queue '${this.queue}': ${this.running} handler(s) still running after ${timeoutMs} ms; their messages go back to the queue`,
      );
    }
    this.consumer = null;
    return drained;
  }

  private onMessage(msg: SessionMessage): Promise<void> | undefined {
    // Stopping: an ack-mode message we have not started stays unacked and is requeued when the channel closes.
    if (this.stopping && !this.plan.noAck) return undefined;
    // A free slot (the usual case) runs it at once, without a closure per message.
    if (this.running < this.plan.concurrency) {
      this.running++;
      return this.traced(msg).then(this.processed, this.processFailed);
    }
    return this.admit(() => this.traced(msg), msg);
  }

  /** The message's CONSUMER span (when tracing is on) around its processing; it ends when the message is settled. */
  private traced(msg: SessionMessage): Promise<Held | void> {
    const trace = this.telemetry.process(msg, this.queue, this.plan.noAck);
    return trace ? trace.run(() => this.process(msg, trace)) : this.process(msg, undefined);
  }

  /** Run `start` in a free handler slot, or once one frees up; resolves when its work is done. Never rejects. */
  private admit(start: () => Promise<Held | void>, msg?: SessionMessage): Promise<void> {
    if (this.running < this.plan.concurrency) return this.run(start);
    return new Promise<void>((done) => this.waiting.push({ start, msg, done }));
  }

  /** Never rejects: a failure is logged here. A message held by a batch frees its slot, but is done with its batch. */
  private run(start: () => Promise<Held | void>): Promise<void> {
    this.running++;
    return start().then(this.processed, this.processFailed);
  }

  private readonly processed = (held: Held | void): Promise<void> | undefined => {
    this.running--;
    this.next();
    return held ? held.until : undefined;
  };

  private readonly processFailed = (err: unknown): void => {
    this.host.logger.error(`queue '${this.queue}': ${describeError(err)}`);
    this.processed();
  };

  private next(): void {
    while (this.running < this.plan.concurrency && this.waiting.length > 0) {
      const { start, msg, done } = this.waiting.shift()!;
      // Its channel died while it waited: the broker redelivers it (an ack would be dropped), so handling it now
      // would handle it twice. No-ack messages are never redelivered: they run whatever happened to the channel.
      if (msg && !this.plan.noAck && !msg.isLive()) {
        this.host.logger.debug?.(
          `queue '${this.queue}': skipped a waiting message whose channel closed; the broker redelivers it (${this.describe(msg)})`,
        );
        done();
        continue;
      }
      void this.run(start).then(done);
    }
    if (this.idleWaiters.size > 0 && this.isIdle()) this.idleWaiters.resolveAll();
  }

  private isIdle(): boolean {
    return this.running === 0 && this.waiting.length === 0;
  }

  private whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    // Out of time (the session's draining cancel used it up): do not wait at all. To the waiter list a timeout of 0
    // means no bound, which would hold close() for as long as a handler runs.
    if (timeoutMs <= 0) return Promise.resolve(false);
    return this.idleWaiters.wait(timeoutMs, 'drain').then(
      () => true,
      () => false,
    );
  }

  private async process(msg: SessionMessage, trace: ProcessTrace | undefined): Promise<Held | void> {
    const settlement = new Settlement(msg, this.plan.noAck, trace);
    let headers: FieldTable | undefined;
    try {
      headers = msg.properties.headers;
    } catch (err) {
      this.host.logger.error(
        `rejected a message with unreadable headers (${this.describe(msg)}): ${describeError(err)}`,
      );
      settlement.reject(false);
      return;
    }
    const fromHeader = headers === undefined ? undefined : headers[WarrenHeaders.PATTERN];
    const pattern = typeof fromHeader === 'string' ? fromHeader : msg.fields.routingKey;
    const route = this.route(pattern, typeof fromHeader === 'string', msg);
    const replyTo = msg.properties.replyTo;

    if (!route) {
      this.host.logger.warn(`no handler for pattern '${pattern}' on queue '${this.queue}' (${this.describe(msg)})`);
      if (replyTo) {
        await this.reply(msg, undefined, {
          status: 'error',
          message: `There is no matching message handler for pattern '${pattern}' on queue '${this.queue}'`,
          code: 'NO_HANDLER',
        });
        settlement.ack();
      } else settlement.nack(false);
      return;
    }

    let data: unknown;
    try {
      data = route.deserializer.deserialize(msg.body, msg.properties);
    } catch (err) {
      this.host.logger.error(
        `rejected a message whose body cannot be deserialized (${this.describe(msg)}): ${describeError(err)}`,
      );
      if (replyTo && !route.isEvent) {
        await this.reply(msg, undefined, {
          status: 'error',
          message: `The request body cannot be deserialized: ${describeError(err)}`,
          code: 'DESERIALIZATION_FAILED',
        });
      }
      settlement.reject(false);
      return;
    }
    if (route.schema) {
      const checked = route.schema.check(data);
      const outcome = 'then' in checked ? await checked : checked;
      if (!outcome.ok) return this.rejectInvalid(msg, route, pattern, outcome.issues, settlement);
      data = outcome.value;
    }

    const ctx = new AmqpContext([msg, pattern, this.queue, settlement]);
    if (route.batch) return this.hold(route, { msg, data, pattern, ctx, settlement });
    let result: unknown;
    let failure: { error: unknown } | undefined;
    try {
      // Nest's handlers return a Promise of a value or of an Observable: only an Observable needs rxjs.
      result = await this.host.invoke(route.handler, data, ctx);
      if (isObservable(result)) {
        if (!route.isEvent && replyTo) {
          result = await streamReplies(result, (value) => this.reply(msg, route, undefined, value, 'next'));
        } else result = await lastValueFrom(result, { defaultValue: undefined });
      }
    } catch (error) {
      failure = error instanceof StreamFailure ? { error: error.cause } : { error };
      trace?.failed(failure.error);
    }

    if (!route.isEvent && replyTo) {
      // A failure, also one part-way through a stream of replies, is answered with an error reply (which ends it).
      const sending = failure
        ? this.reply(msg, route, toErrorEnvelope(failure.error))
        : result === STREAMED
          ? this.reply(msg, route, undefined, undefined, 'end')
          : this.reply(msg, route, undefined, result);
      if (sending) await sending;
      if (route.ack === 'auto') settlement.ack();
      else if (failure && !settlement.settled) settlement.nack(false);
      return;
    }
    if (!failure) {
      if (route.ack === 'auto') settlement.ack();
      return;
    }
    // Not Nest's reply to a caller (a plain Error is an 'Internal server error' there): what the handler threw.
    await this.onFailure(msg, route, pattern, ctx, settlement, describeFailure(failure.error, ctx));
  }

  /** Add a message to its route's open batch; while stopping, that batch goes to the handler at once. */
  private hold(route: Route, entry: BatchEntry): Held {
    let collector = this.batches.get(route);
    if (!collector) {
      collector = new BatchCollector<BatchEntry>(route.batch!, (entries) =>
        this.admit(() => this.runBatch(route, entries)),
      );
      this.batches.set(route, collector);
    }
    const until = collector.add(entry);
    if (this.stopping) collector.flush();
    return { until };
  }

  /**
   * One call of a batch handler with the payloads and an AmqpBatchContext. Success (ack 'auto') acks every message in
   * the same tick: the channel's AckLedger sends them as one `multiple` ack when nothing older on the channel is
   * still unsettled, one by one otherwise. A failure goes to each message's retry policy (or nack), as for one.
   */
  private async runBatch(route: Route, all: BatchEntry[]): Promise<void> {
    // Messages whose channel died while the batch filled are redelivered by the broker: not handled here.
    const entries = this.plan.noAck ? all : all.filter((e) => e.msg.isLive());
    if (entries.length < all.length) {
      this.host.logger.debug?.(
        `queue '${this.queue}': ${all.length - entries.length} message(s) of a batch for '${route.pattern}' left out: their channel closed; the broker redelivers them`,
      );
    }
    if (entries.length === 0) return;
    const ctx = new AmqpBatchContext([entries.map((e) => e.ctx), route.pattern, this.queue]);
    let failure: { error: unknown } | undefined;
    try {
      const result = await this.host.invoke(
        route.handler,
        entries.map((e) => e.data),
        ctx,
      );
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    } catch (error) {
      failure = { error };
    }
    if (!failure) {
      if (route.ack === 'auto') for (const e of entries) e.settlement.ack();
      return;
    }
    const error = toErrorEnvelope(failure.error);
    await Promise.all(entries.map((e) => this.onFailure(e.msg, route, e.pattern, e.ctx, e.settlement, error)));
  }

  /**
   * A payload that fails its handler's schema: logged with the issues, answered with a VALIDATION_FAILED error reply
   * when it is a request, rejected without requeue (dead-lettered if the queue has a DLX). Never retried: the same
   * payload would fail again.
   */
  private async rejectInvalid(
    msg: SessionMessage,
    route: Route,
    pattern: string,
    issues: PayloadIssue[],
    settlement: Settlement,
  ): Promise<void> {
    this.host.logger.error(
      `rejected a message whose payload does not match the schema of '${pattern}' (${this.describe(msg)}): ${describeIssues(issues)}`,
    );
    if (msg.properties.replyTo && !route.isEvent) await this.reply(msg, undefined, validationFailure(pattern, issues));
    settlement.reject(false);
  }

  /** A failed event (or a request without reply_to): retry policy, or nack without requeue. */
  private async onFailure(
    msg: SessionMessage,
    route: Route,
    pattern: string,
    ctx: AmqpContext,
    settlement: Settlement,
    error: HandlerFailure,
  ): Promise<void> {
    const where = this.describe(msg);
    const why = failureText(error);
    const noAck = this.plan.noAck;
    if (settlement.settled && !noAck) {
      this.host.logger.error(`handler for '${pattern}' failed after settling its message (${where}): ${why}`);
      return;
    }
    if (!route.retry) {
      const outcome = noAck ? 'dropped (no-ack consumer)' : 'nacked without requeue';
      this.host.logger.error(`handler for '${pattern}' failed; message ${outcome} (${where}): ${why}`);
      settlement.nack(false);
      return;
    }
    const attempt = ctx.getAttempt();
    // A message that reached its queue's only handler by the queue's name (no pattern) names that handler's own
    // pattern in its copies: their x-warren-pattern must lead back to it.
    const copyPattern = this.plan.routes.match(pattern) === route ? pattern : route.pattern;
    try {
      const outcome = await this.host.retries.forward(msg, this.queue, copyPattern, attempt, route.retry, error);
      if (outcome.kind === 'retried') {
        this.host.logger.warn(
          `handler for '${pattern}' failed (attempt ${attempt}/${route.retry.attempts}, ${where}): ${why}; retry in ${outcome.delayMs} ms`,
        );
      } else {
        this.telemetry.parked(this.queue);
        this.host.logger.error(
          `handler for '${pattern}' failed for the last time (attempt ${attempt}/${route.retry.attempts}, ${where}): ${why}; parked in '${outcome.queue}'`,
        );
      }
      settlement.ack();
    } catch (err) {
      // The copy is not safely stored: keep the original (it is redelivered with the same attempt number).
      this.host.logger.error(
        `could not store the retry copy of a failed message (${where}): ${describeError(err)}; requeued`,
      );
      settlement.nack(true);
    }
  }

  private route(pattern: string, fromHeader: boolean, msg: SessionMessage): Route | undefined {
    const hit = this.plan.routes.match(pattern);
    if (hit) return hit;
    // Sent straight to the queue through the default exchange by a client that knows no pattern: its only handler.
    if (
      !fromHeader &&
      msg.fields.exchange === '' &&
      msg.fields.routingKey === this.queue &&
      this.plan.routes.size === 1
    ) {
      return this.plan.routes.values()[0];
    }
    return undefined;
  }

  /**
   * Publish the reply (or error envelope) to reply_to through the default exchange, with the request's correlation
   * id; the caller acks the request afterwards. The reply goes out on the channel that delivered the request, without
   * a confirm: the broker handles a channel's methods in order, so the ack that follows reaches it only after the
   * reply was routed, and a connection lost in between redelivers the request. When that channel is gone or its
   * connection is blocked by a resource alarm, it goes through the session (publisher connection) and is confirmed
   * before the returned promise resolves. Returns undefined when the reply is already on its way (no promise on the
   * common path); never rejects: failures are logged.
   */
  private reply(
    msg: SessionMessage,
    route: Route | undefined,
    error?: RpcErrorEnvelope,
    value?: unknown,
    stream?: 'next' | 'end',
  ): Promise<void> | undefined {
    const replyTo = msg.properties.replyTo;
    if (!replyTo) return undefined;
    const reply = stream === 'end' ? STREAM_END_REPLY : encodeReply(route?.serializer, error, value);
    if (stream === 'next' && !reply.headers?.[WarrenHeaders.ERROR]) {
      reply.headers = { ...reply.headers, [WarrenHeaders.STREAM]: 'next' };
    }
    const options: PublishOptions = {
      correlationId: msg.properties.correlationId,
      contentType: reply.contentType,
      contentEncoding: reply.contentEncoding,
      headers: reply.headers,
    };
    this.telemetry.injectReply(options);
    if (msg.publishOnChannel('', replyTo, reply.body, options)) return undefined;
    return this.host.session
      .publish('', replyTo, reply.body, options)
      .catch((err: unknown) =>
        this.host.logger.error(`could not reply to '${replyTo}' (${this.describe(msg)}): ${describeError(err)}`),
      );
  }

  private describe(msg: SessionMessage): string {
    const { messageId, correlationId } = msg.properties;
    const id = messageId ? `, message id '${messageId}'` : correlationId ? `, correlation id '${correlationId}'` : '';
    return `queue '${this.queue}', routing key '${msg.fields.routingKey}'${id}`;
  }
}
