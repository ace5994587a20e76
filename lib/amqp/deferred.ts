import { TimeoutError } from './errors';

/**
 * The one waiter helper: a promise with its settle functions, settled at most once. Every "wait until
 * X happens" in the client is a Deferred (or a WaiterList of them) instead of a hand-made callback list.
 */
export class Deferred<T = void> {
  readonly promise: Promise<T>;
  private settled = false;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (err: Error) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  get isSettled(): boolean {
    return this.settled;
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveFn(value);
  }

  reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }
}

/** Waiters for one condition, woken together (or failed together). */
export class WaiterList<T = void> {
  private waiters: Array<Deferred<T>> = [];

  get size(): number {
    return this.waiters.length;
  }

  /** A new waiter; `timeoutMs` (if > 0) bounds it with a TimeoutError naming `operation`. */
  wait(timeoutMs = 0, operation = 'wait', message?: () => string): Promise<T> {
    const d = new Deferred<T>();
    this.waiters.push(d);
    if (timeoutMs <= 0) return d.promise;
    // Removed the moment it times out, so a later resolveOne() cannot hand its value to nobody.
    return withTimeout(d.promise, timeoutMs, operation, message, () => this.remove(d));
  }

  /** Hand one waiter (the oldest) its value; false when nobody waits. */
  resolveOne(value: T): boolean {
    const d = this.waiters.shift();
    if (!d) return false;
    d.resolve(value);
    return true;
  }

  resolveAll(value: T): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const d of ws) d.resolve(value);
  }

  rejectAll(err: Error): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const d of ws) d.reject(err);
  }

  private remove(d: Deferred<T>): void {
    const i = this.waiters.indexOf(d);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

/**
 * The one timeout helper: race `p` against a timer; on expiry reject with a TimeoutError naming the
 * operation (and call `onTimeout`, e.g. to abort what `p` waits for). `ms <= 0` means no bound. The
 * timer is always cleared, so nothing is left running once `p` settles.
 */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  operation: string,
  message?: () => string,
  onTimeout?: (err: TimeoutError) => void,
): Promise<T> {
  if (!(ms > 0) || ms === Infinity) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new TimeoutError(message ? message() : `${operation} timed out after ${ms} ms`, operation, ms);
      onTimeout?.(err);
      reject(err);
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Sleep `ms`, cut short (resolving early) when `signal` aborts. The timer is cleared on abort, so a
 * closed owner leaves nothing behind.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
