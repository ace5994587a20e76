/** Messages collected by a consumer, with a wait for the n-th one (no polling). */
export interface Collector<M extends { body: Buffer }> {
  messages: M[];
  bodies: () => string[];
  handler: (m: M) => void;
  atLeast: (n: number) => Promise<void>;
}

export function collector<M extends { body: Buffer }>(): Collector<M> {
  const messages: M[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    messages,
    bodies: () => messages.map((m) => m.body.toString()),
    handler: (m) => {
      messages.push(m);
      for (const w of waiters.filter((x) => messages.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    atLeast: (n) => (messages.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}
