/**
 * Calls start(i) for i in [0, n) keeping at most `window` of the returned promises unsettled; rejects on the first
 * failure. With window 1 this is a plain `for (...) await start(i)` loop.
 */
export async function pipelined(n: number, window: number, start: (i: number) => Promise<unknown>): Promise<void> {
  if (window <= 1) {
    for (let i = 0; i < n; i++) await start(i);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let pending = 0;
    let failed = false;
    const pump = (): void => {
      while (!failed && pending < window && next < n) {
        pending++;
        start(next++).then(settled, fail);
      }
      if (!failed && pending === 0 && next >= n) resolve();
    };
    const settled = (): void => {
      pending--;
      pump();
    };
    const fail = (err: unknown): void => {
      failed = true;
      reject(err);
    };
    pump();
  });
}
