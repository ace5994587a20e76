import type { ConfirmWaiter } from './confirms';
import { BufferOverflowError, TimeoutError } from './errors';
import type { PublishOptions } from './message';

/**
 * Bounds of a session's outage buffer. A publish that finds it full rejects with {@link BufferOverflowError}; one that
 * waits longer than `timeoutMs` rejects with {@link TimeoutError}.
 */
export interface PublishBufferOptions {
  /** Publishes held while disconnected. Default 10 000. */
  maxMessages?: number;
  /** Bytes of bodies held while disconnected. Default 64 MiB. */
  maxBytes?: number;
  /** How long one publish may wait in the buffer, ms. Default 30 000. */
  timeoutMs?: number;
}

export const PUBLISH_BUFFER_DEFAULTS: Required<PublishBufferOptions> = {
  maxMessages: 10_000,
  maxBytes: 64 * 1024 * 1024,
  timeoutMs: 30_000,
};

/** What the session does when a publish on the wire is confirmed or fails. */
export interface PublishOutcomes {
  confirmed(p: PendingPublish): void;
  failed(p: PendingPublish, err: Error): void;
}

/**
 * One `AmqpSession.publish` until its caller is told: `resolve`/`reject` settle the caller's promise.
 * On the wire it is the channel's confirm waiter itself (no promise per attempt), handing the outcome
 * to the session, which may send it again after a lost connection.
 */
export class PendingPublish implements ConfirmWaiter {
  timer: NodeJS.Timeout | undefined = undefined;
  /** Retries after a 404 on a recorded exchange. */
  attempts: number | undefined = undefined;
  /** When waiting in the outage buffer must end (set on first wait). */
  deadline: number | undefined = undefined;
  /** A basic.return matched the current attempt (set by the channel). */
  returned: Error | undefined = undefined;
  /** Sent again after a lost connection at least once (`publishRepublished` is told once per publish). */
  republished = false;
  /** Told once the caller's promise has settled (a draining close waits for it). */
  onSettled: (() => void) | undefined = undefined;

  constructor(
    private readonly outcomes: PublishOutcomes,
    readonly seq: number,
    readonly exchange: string,
    readonly routingKey: string,
    readonly body: Buffer,
    readonly options: PublishOptions | undefined,
    private readonly resolveFn: () => void,
    private readonly rejectFn: (err: Error) => void,
  ) {}

  onConfirm(): void {
    this.outcomes.confirmed(this);
  }

  onFail(err: Error): void {
    this.outcomes.failed(this, err);
  }

  resolve(): void {
    this.resolveFn();
    this.onSettled?.();
  }

  reject(err: Error): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.rejectFn(err);
    this.onSettled?.();
  }
}

/**
 * The outage buffer: publishes held while the publisher is not ready, bounded in count, bytes and
 * time. Each publish's wait is bounded from the moment it first waits; a full buffer refuses new
 * publishes (never ones it already took, e.g. unconfirmed ones being sent again).
 */
export class PublishBuffer {
  private items: PendingPublish[] = [];
  private bytes = 0;
  private readonly o: Required<PublishBufferOptions>;

  constructor(
    private readonly name: string,
    options: PublishBufferOptions | undefined,
  ) {
    this.o = { ...PUBLISH_BUFFER_DEFAULTS, ...options };
  }

  get length(): number {
    return this.items.length;
  }

  get timeoutMs(): number {
    return this.o.timeoutMs;
  }

  /** Hold `p`. `accepted`: taken before (never refused for space). False when refused (p is rejected). */
  hold(p: PendingPublish, accepted: boolean): boolean {
    const o = this.o;
    if (!accepted && (this.items.length >= o.maxMessages || this.bytes + p.body.length > o.maxBytes)) {
      p.reject(
        new BufferOverflowError(
          `session ${this.name}: publish buffer full (${this.items.length} messages, ${this.bytes} bytes; limits ${o.maxMessages} / ${o.maxBytes})`,
        ),
      );
      return false;
    }
    p.deadline ??= Date.now() + o.timeoutMs;
    p.timer ??= setTimeout(() => this.expire(p), Math.max(0, p.deadline - Date.now()));
    this.items.push(p);
    this.bytes += p.body.length;
    return true;
  }

  /** Everything held, oldest first (re-published ones interleave with buffered ones by original order). */
  takeAll(): PendingPublish[] {
    const items = this.items.sort((a, b) => a.seq - b.seq);
    this.items = [];
    this.bytes = 0;
    for (const p of items) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
    return items;
  }

  /** Fail everything held. */
  rejectAll(err: Error): void {
    for (const p of this.takeAll()) p.reject(err);
  }

  private expire(p: PendingPublish): void {
    const i = this.items.indexOf(p);
    if (i < 0) return;
    this.items.splice(i, 1);
    this.bytes -= p.body.length;
    p.reject(
      new TimeoutError(
        `publish to '${p.exchange}' / '${p.routingKey}' waited ${this.o.timeoutMs} ms for the broker`,
        'publish',
        this.o.timeoutMs,
      ),
    );
  }
}
