import type { AmqpSession, FieldTable, Logger, PublishOptions, SessionMessage } from '../../amqp';
import { WarrenHeaders } from '../amqp.constants';
import type { HandlerFailure } from '../server/handler-failure';
import { retryQueueName, type ResolvedRetryPolicy } from './retry-policy';

export type RetryOutcome = { kind: 'retried'; attempt: number; delayMs: number } | { kind: 'parked'; queue: string };

/**
 * Moves a failed event on: a copy to the retry queue of its next delay, or to the parking lot after the last
 * attempt. Resolves once the broker confirmed the copy; only then may the original be acked.
 */
export class RetryPublisher {
  constructor(
    private readonly session: AmqpSession,
    private readonly logger: Logger,
  ) {}

  async forward(
    msg: SessionMessage,
    queue: string,
    pattern: string,
    attempt: number,
    policy: ResolvedRetryPolicy,
    error: HandlerFailure,
  ): Promise<RetryOutcome> {
    const original = msg.properties.headers ?? {};
    const headers: FieldTable = {
      ...original,
      [WarrenHeaders.PATTERN]: pattern,
      [WarrenHeaders.QUEUE]: queue,
      [WarrenHeaders.ORIGINAL_EXCHANGE]: stringHeader(original, WarrenHeaders.ORIGINAL_EXCHANGE) ?? msg.fields.exchange,
      [WarrenHeaders.ORIGINAL_ROUTING_KEY]:
        stringHeader(original, WarrenHeaders.ORIGINAL_ROUTING_KEY) ?? msg.fields.routingKey,
      [WarrenHeaders.ERROR_MESSAGE]: truncate(error.message),
      [WarrenHeaders.ERROR_STATUS]: String(error.status),
    };
    // Headers of an earlier failure that this one does not have would be misleading.
    if (error.name !== undefined) headers[WarrenHeaders.ERROR_NAME] = error.name;
    else delete headers[WarrenHeaders.ERROR_NAME];
    if (error.code !== undefined) headers[WarrenHeaders.ERROR_CODE] = String(error.code);
    else delete headers[WarrenHeaders.ERROR_CODE];

    if (attempt < policy.attempts) {
      const delayMs = policy.delays[attempt - 1];
      headers[WarrenHeaders.ATTEMPT] = attempt + 1;
      await this.session.publish('', retryQueueName(queue, delayMs), msg.body, copyProperties(msg, headers));
      return { kind: 'retried', attempt: attempt + 1, delayMs };
    }
    headers[WarrenHeaders.ATTEMPT] = attempt;
    headers[WarrenHeaders.FAILED_AT] = new Date().toISOString();
    // deliveryMode, not `persistent`: the original's own delivery mode (1 for a transient one) would win over it.
    await this.session.publish('', policy.parkingLot, msg.body, { ...copyProperties(msg, headers), deliveryMode: 2 });
    this.logger.debug?.(`parked message ${msg.properties.messageId ?? '(no id)'} in '${policy.parkingLot}'`);
    return { kind: 'parked', queue: policy.parkingLot };
  }
}

/** The original's properties with new headers; no per-message TTL (it would cut the retry delay short). */
function copyProperties(msg: SessionMessage, headers: FieldTable): PublishOptions {
  const { expiration: _expiration, headers: _headers, ...rest } = msg.properties.toJSON();
  return { ...rest, headers };
}

function stringHeader(headers: FieldTable, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** At most `max` characters, the ellipsis included. */
function truncate(s: string, max = 1000): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
