import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Marks an application boot as "describe only" (`generateAsyncApi`, `warren asyncapi`): every Warren connection of
 * that boot makes its session but never opens it, so nothing is declared, consumed or published. The mark follows the
 * boot's async context, so another app booting in the same process at the same time is unaffected.
 *
 * The storage lives on `globalThis` under a registered symbol: an app that loads a second copy of the package (the
 * CLI from one place, the module file importing another) still sees the mark, instead of connecting to the broker.
 */
const STORE = Symbol.for('nestjs-warren.describe-only');

type Holder = { [STORE]?: AsyncLocalStorage<true> };

function storage(): AsyncLocalStorage<true> {
  const holder = globalThis as Holder;
  return (holder[STORE] ??= new AsyncLocalStorage<true>());
}

/** Runs `boot` with every Warren connection it creates left unopened. */
export function describeOnly<T>(boot: () => Promise<T>): Promise<T> {
  return storage().run(true, boot);
}

/** Whether the current boot only describes the app (connections are not opened). */
export function isDescribeOnly(): boolean {
  return storage().getStore() === true;
}
