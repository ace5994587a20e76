import { BaseRpcContext } from '@nestjs/microservices';
import type { SessionMessage } from '../../amqp';
import type { AmqpContext } from './amqp.context';

/**
 * What an {@link AmqpBatchContext} is made of: one context per message, the handler's pattern and the queue. Not
 * exported from the package, yet left in the published declarations: the `AmqpBatchContext` type refers to it.
 */
export type AmqpBatchContextArgs = [contexts: AmqpContext[], pattern: string, queue: string];

/**
 * What `@Ctx()` gives a batch handler (`batch` in its options): one `AmqpContext` per message of the batch, in
 * delivery order (the same order as the payloads), and, for handlers in `ack: 'manual'` mode, `ack()` / `nack()` /
 * `reject()` of every message not settled yet.
 */
export class AmqpBatchContext extends BaseRpcContext<AmqpBatchContextArgs> {
  /** @internal made by the server for each batch */
  constructor(args: AmqpBatchContextArgs) {
    super(args);
  }

  /** One context per message, in the order of the payloads. */
  getContexts(): AmqpContext[] {
    return this.args[0];
  }

  /** The raw messages (`body`, `properties`, `fields`), in the order of the payloads. */
  getMessages(): SessionMessage[] {
    return this.args[0].map((c) => c.getMessage());
  }

  /** The handler's pattern (each message's own is `getContexts()[i].getPattern()`). */
  getPattern(): string {
    return this.args[1];
  }

  /** The queue the batch was consumed from. */
  getQueue(): string {
    return this.args[2];
  }

  /** Whether every message of the batch was acked, nacked or rejected already. */
  get isSettled(): boolean {
    return this.args[0].every((c) => c.isSettled);
  }

  /** Acknowledge every message not settled yet. */
  ack(): void {
    for (const c of this.args[0]) c.ack();
  }

  /** Negative acknowledgement of every message not settled yet; `requeue` defaults to true. */
  nack(options: { requeue?: boolean } = {}): void {
    for (const c of this.args[0]) c.nack(options);
  }

  /** Reject every message not settled yet; `requeue` defaults to false. */
  reject(options: { requeue?: boolean } = {}): void {
    for (const c of this.args[0]) c.reject(options);
  }
}
