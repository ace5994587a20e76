import type { MessageHandler } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import type { AmqpSession, FieldTable, Logger, PublishOptions, SessionConsumer, SessionMessage } from '../../amqp';
import { WaiterList } from '../../amqp/deferred';
import { WarrenHeaders } from '../amqp.constants';
import { describeError } from '../amqp.logger';
import { AmqpContext, type DeliverySettlement } from '../ctx-host/amqp.context';
import type { RetryPublisher } from '../retry/retry-publisher';
import { CONTENT_TYPE_JSON } from '../serialization/default.serializer';
import type { SerializedBody } from '../serialization/amqp-serializer.interface';
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
  invoke(handler: MessageHandler, data: unknown, ctx: AmqpContext): unknown;
}

/** Settles a delivery at most once; a no-op for no-ack consumers. */
class Settlement implements DeliverySettlement {
  settled: boolean;

  constructor(
    private readonly msg: SessionMessage,
    noAck: boolean,
  ) {
    this.settled = noAck;
  }

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.ack();
  }

  nack(requeue: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.nack(requeue);
  }

  reject(requeue: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.reject(requeue);
  }
}

/** A message waiting for a free handler slot (concurrency), and what settles its delivery for the session. */
interface Waiting {
  msg: SessionMessage;
  done: () => void;
}

/**
 * One consumer on one queue: dispatches each message to the handler of its pattern, runs at most `concurrency`
 * handlers at once, replies to requests, settles per the route's ack mode, and hands failed events to the retry
 * policy. `stop()` cancels the consumer at once and lets running handlers finish; messages it did not start are never
 * acked (the broker requeues them when the consumer's channel closes).
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
    const { prefetch, noAck, priority } = this.plan;
    this.consumer = await this.host.session.consume(this.plan.queue.name, (m) => this.onMessage(m), {
      prefetch,
      noAck,
      priority,
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
    // messages are ours already: they still run.
    if (!this.plan.noAck) for (const w of this.waiting.splice(0)) w.done();
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
    if (this.running < this.plan.concurrency) return this.run(msg);
    return new Promise<void>((done) => this.waiting.push({ msg, done }));
  }

  /** Never rejects: a failure is logged here. */
  private run(msg: SessionMessage): Promise<void> {
    this.running++;
    return this.process(msg).then(this.processed, this.processFailed);
  }

  private readonly processed = (): void => {
    this.running--;
    this.next();
  };

  private readonly processFailed = (err: unknown): void => {
    this.host.logger.error(`queue '${this.queue}': ${describeError(err)}`);
    this.processed();
  };

  private next(): void {
    while (this.running < this.plan.concurrency && this.waiting.length > 0) {
      const { msg, done } = this.waiting.shift()!;
      // Its channel died while it waited: the broker redelivers it (an ack would be dropped), so handling it now
      // would handle it twice. No-ack messages are never redelivered: they run whatever happened to the channel.
      if (!this.plan.noAck && !msg.isLive()) {
        this.host.logger.debug?.(
          `queue '${this.queue}': skipped a waiting message whose channel closed; the broker redelivers it (${this.describe(msg)})`,
        );
        done();
        continue;
      }
      void this.run(msg).then(done);
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

  private async process(msg: SessionMessage): Promise<void> {
    const settlement = new Settlement(msg, this.plan.noAck);
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

    const ctx = new AmqpContext([msg, pattern, this.queue, settlement]);
    let result: unknown;
    let failure: { error: unknown } | undefined;
    try {
      // Nest's handlers return a Promise of a value or of an Observable: only an Observable needs rxjs.
      result = await this.host.invoke(route.handler, data, ctx);
      if (isObservable(result)) result = await lastValueFrom(result, { defaultValue: undefined });
    } catch (error) {
      failure = { error };
    }

    if (!route.isEvent && replyTo) {
      const sending = this.reply(msg, route, failure ? toErrorEnvelope(failure.error) : undefined, result);
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
    try {
      const outcome = await this.host.retries.forward(msg, this.queue, pattern, attempt, route.retry, error);
      if (outcome.kind === 'retried') {
        this.host.logger.warn(
          `handler for '${pattern}' failed (attempt ${attempt}/${route.retry.attempts}, ${where}): ${why}; retry in ${outcome.delayMs} ms`,
        );
      } else {
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
  ): Promise<void> | undefined {
    const replyTo = msg.properties.replyTo;
    if (!replyTo) return undefined;
    const reply = encodeReply(route, error, value);
    const options: PublishOptions = {
      correlationId: msg.properties.correlationId,
      contentType: reply.contentType,
      contentEncoding: reply.contentEncoding,
      headers: reply.headers,
    };
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

/** A reply body: the route's serialization of the value, or a JSON error envelope flagged with `x-warren-error`. */
function encodeReply(
  route: Route | undefined,
  error: RpcErrorEnvelope | undefined,
  value: unknown,
): SerializedBody & { headers?: FieldTable } {
  if (!error && route) {
    try {
      const { body, contentType, contentEncoding } = route.serializer.serialize(value);
      // No headers table at all on a plain reply: nothing for the broker and the caller to decode.
      return { body, contentType, contentEncoding };
    } catch (err) {
      error = {
        status: 'error',
        message: `The reply cannot be serialized: ${describeError(err)}`,
        code: 'SERIALIZATION_FAILED',
      };
    }
  }
  const envelope = error ?? { status: 'error', message: 'no reply' };
  return {
    body: Buffer.from(JSON.stringify(envelope)),
    contentType: CONTENT_TYPE_JSON,
    headers: { [WarrenHeaders.ERROR]: true },
  };
}
