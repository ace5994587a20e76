import { ChannelError, ReplyCode } from '../../amqp';
import { DIRECT_REPLY_QUEUE } from '../amqp.constants';

/** Reply codes by which a broker says it has (or grants) no direct reply-to: retrying cannot help. */
const REFUSAL_CODES: ReadonlySet<number> = new Set([
  ReplyCode.ACCESS_REFUSED,
  ReplyCode.NOT_FOUND,
  ReplyCode.RESOURCE_LOCKED,
  ReplyCode.NOT_IMPLEMENTED,
]);

/**
 * The broker refused direct reply-to (its `basic.consume` on `amq.rabbitmq.reply-to` was answered with 403, 404,
 * 405 or 540): no reply can ever arrive this way, so every call of a `replyTo: 'direct'` client fails with this at
 * once. Carries the broker's reply code and text; use the client option `replyTo: 'queue'` on such a broker.
 */
export class DirectReplyToUnavailableError extends ChannelError {
  constructor(refusal: ChannelError) {
    super(
      `the broker refused direct reply-to (basic.consume on '${DIRECT_REPLY_QUEUE}': ${refusal.replyCode} ` +
        `${refusal.replyText}); no reply can arrive: use the client option replyTo: 'queue'`,
      refusal.replyCode,
      refusal.replyText,
      refusal.failedMethod,
      { cause: refusal },
    );
  }

  /**
   * Whether a channel error is the broker refusing direct reply-to: a refusal code for basic.consume, or for no named
   * method when `fromConsume` (the error is the reply consumer's own `basic.consume` rejection).
   */
  static isRefusal(err: unknown, fromConsume = false): err is ChannelError {
    if (!(err instanceof ChannelError) || !REFUSAL_CODES.has(err.replyCode)) return false;
    const failed = err.failedMethod;
    if (!failed) return fromConsume;
    // The method a broker without direct reply-to refuses (named from the generated method table).
    return failed.methodName === 'basic.consume';
  }
}
