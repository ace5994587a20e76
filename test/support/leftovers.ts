import type { Logger } from '../../lib';

type TimerHandle = NodeJS.Timeout | NodeJS.Immediate;

/**
 * What a test's code leaves behind: sockets (counted by `process.getActiveResourcesInfo()`) and timers
 * (every setTimeout/setInterval/setImmediate made through the globals while watching, ref'd or not — an
 * unref'd heartbeat interval is invisible to getActiveResourcesInfo but still a leak). The globals are
 * wrapped, calling through; Jest's own timers live in another realm and are not seen.
 *
 *   const leftovers = await watchLeftovers();
 *   ... connect, close, wait until the peer's socket has closed ...
 *   await leftovers.expectNone();
 */
export interface LeftoverWatch {
  /** Stops watching, then expects no socket beyond the starting count and no live timer. */
  expectNone(): Promise<void>;
}

export async function watchLeftovers(): Promise<LeftoverWatch> {
  // Sockets an earlier test destroyed without awaiting 'close' (e.g. FakeAmqpServer.close) are released
  // in the close-callbacks phase, after immediates: a zero timer (the next loop iteration) is past it.
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
  const sockets = socketCount();
  const live = new Map<TimerHandle, string>();
  const g = globalThis as unknown as Record<string, (...args: never[]) => unknown>;
  const real = {
    setTimeout: g.setTimeout,
    setInterval: g.setInterval,
    setImmediate: g.setImmediate,
    clearTimeout: g.clearTimeout,
    clearInterval: g.clearInterval,
    clearImmediate: g.clearImmediate,
  };
  const track = (make: 'setTimeout' | 'setInterval' | 'setImmediate', oneShot: boolean) =>
    function (this: unknown, fn: (...a: unknown[]) => void, ...rest: unknown[]): unknown {
      const where = new Error(make).stack ?? make;
      const handle = (real[make] as (...args: unknown[]) => unknown).call(
        this,
        function (this: unknown, ...a: unknown[]) {
          if (oneShot) live.delete(handle);
          fn.apply(this, a);
        },
        ...rest,
      ) as TimerHandle;
      live.set(handle, where);
      return handle;
    };
  const untrack = (clear: 'clearTimeout' | 'clearInterval' | 'clearImmediate') =>
    function (this: unknown, handle: unknown): void {
      live.delete(handle as TimerHandle);
      (real[clear] as (h: unknown) => void).call(this, handle);
    };
  g.setTimeout = track('setTimeout', true);
  g.setInterval = track('setInterval', false);
  g.setImmediate = track('setImmediate', true);
  g.clearTimeout = untrack('clearTimeout');
  g.clearInterval = untrack('clearInterval');
  g.clearImmediate = untrack('clearImmediate');
  return {
    async expectNone(): Promise<void> {
      Object.assign(g, real);
      // One turn of the loop: a handle whose 'close' was just emitted is released after that callback.
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect([...live.values()]).toEqual([]);
      expect(socketCount()).toBeLessThanOrEqual(sockets);
    },
  };
}

function socketCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
