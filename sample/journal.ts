import { Injectable } from '@nestjs/common';

export type Entry =
  | { kind: 'charged'; orderId: number; amount: number; attempt: number }
  | { kind: 'charge-failed'; orderId: number; attempt: number; reason: string }
  | { kind: 'emailed'; orderId: number; to: string }
  | { kind: 'tallied'; orderIds: number[]; revenue: number; messageIds: Array<string | undefined> }
  | { kind: 'remembered'; orderId: number; offset: number | undefined };

/** What the services did, for main.ts to wait on and print. Event based: no polling. */
@Injectable()
export class Journal {
  readonly entries: Entry[] = [];
  private waiters: Array<{ test: () => boolean; resolve: () => void }> = [];

  record(entry: Entry): void {
    this.entries.push(entry);
    for (const w of this.waiters.filter((x) => x.test())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  /** Resolves once `test()` holds; rejects after timeoutMs naming `what`. */
  until(test: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  of<K extends Entry['kind']>(kind: K): Array<Extract<Entry, { kind: K }>> {
    return this.entries.filter((e): e is Extract<Entry, { kind: K }> => e.kind === kind);
  }
}
