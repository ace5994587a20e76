import type { Observable } from 'rxjs';

/** The result of a request handler whose replies were streamed: only the closing `'end'` reply is left to send. */
export const STREAMED = Symbol('streamed');

/** A request handler's Observable failed while streaming replies (`cause`: its error). */
export class StreamFailure extends Error {}

/**
 * A request handler's Observable: a value followed at once by completion (what `of(x)` or a Promise gives) is one
 * plain reply, returned for the caller to send as always. Otherwise — a second value, or no completion by the next
 * turn of the event loop — every value goes out as soon as it comes (`sendNext`), as a reply marked
 * `x-warren-stream: 'next'`, and the caller closes the stream with an empty `'end'` reply. Replies go out in order: each waits for the one
 * before (a fallback publish through the session is asynchronous). Resolves with the only value (or undefined) or
 * STREAMED; an error of the Observable rejects as a StreamFailure once the replies before it are out.
 */
export function streamReplies(
  values: Observable<unknown>,
  sendNext: (value: unknown) => Promise<void> | undefined,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let chain: Promise<void> = Promise.resolve();
    let held: { value: unknown } | undefined;
    let streaming = false;
    let flush: NodeJS.Immediate | undefined;
    const send = (value: unknown): void => {
      chain = chain.then(() => sendNext(value));
    };
    const startStreaming = (): void => {
      if (flush) clearImmediate(flush);
      flush = undefined;
      streaming = true;
      if (held) send(held.value);
      held = undefined;
    };
    values.subscribe({
      next: (value) => {
        if (streaming) return send(value);
        if (!held) {
          held = { value };
          flush = setImmediate(startStreaming);
          return;
        }
        startStreaming();
        send(value);
      },
      error: (err: unknown) => {
        if (flush) clearImmediate(flush);
        void chain.then(() => reject(new StreamFailure('streamed reply failed', { cause: err })));
      },
      complete: () => {
        if (flush) clearImmediate(flush);
        void chain.then(() => resolve(streaming ? STREAMED : held?.value));
      },
    });
  });
}
