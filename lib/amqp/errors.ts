/**
 * Typed errors. Every error that comes from the broker carries the AMQP reply code and text,
 * and, where the broker named one, the class/method that failed.
 */

import { ReplyCode } from './protocol/spec.generated';

/** AMQP 0-9-1 reply codes by name (`ReplyCode.NOT_FOUND` is 404), generated from the spec: `protocol/spec.generated.ts`. */
export { ReplyCode };

/** Base class: every error Warren throws is an `AmqpError`. */
export class AmqpError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where a broker-reported failure happened (the method the broker rejected). */
export interface FailedMethod {
  classId: number;
  methodId: number;
  /** e.g. `queue.declare`; empty when the broker named no method. */
  methodName: string;
}

/** A malformed or unexpected frame: reply codes 501 (frame), 502 (syntax), 503 (command invalid), 505 (unexpected frame). */
export class ProtocolError extends AmqpError {
  constructor(
    message: string,
    readonly replyCode: number = ReplyCode.FRAME_ERROR,
  ) {
    super(message);
  }
}

/** Invalid options, URL or arguments given by the caller. `field` names the offending field. */
export class ConfigError extends AmqpError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A value that cannot be encoded on the wire (bad field-table value, string too long...). */
export class EncodeError extends AmqpError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The connection was closed by the broker (`connection.close`) or could not be opened. */
export class ConnectionError extends AmqpError {
  constructor(
    message: string,
    readonly replyCode: number,
    readonly replyText: string,
    readonly failedMethod?: FailedMethod,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Login refused (403 ACCESS_REFUSED during the handshake). Never retried. */
export class AuthenticationError extends ConnectionError {}

/** The vhost does not exist or the user may not open it. Never retried. */
export class VhostError extends ConnectionError {}

/** The connection went away: socket end/error, missed heartbeats, a broker close. */
export class ConnectionLostError extends AmqpError {}

/** No frame arrived for 2 × heartbeat: the peer is considered dead. */
export class HeartbeatTimeoutError extends ConnectionLostError {
  constructor(readonly heartbeatSeconds: number) {
    super(
      `no frame from the broker for ${2 * heartbeatSeconds}s (heartbeat ${heartbeatSeconds}s): peer considered dead`,
    );
  }
}

/** The channel was closed by the broker (`channel.close`); only that channel is affected. */
export class ChannelError extends AmqpError {
  constructor(
    message: string,
    readonly replyCode: number,
    readonly replyText: string,
    readonly failedMethod?: FailedMethod,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An operation on a channel (or connection) that the application already closed. */
export class ClosedError extends AmqpError {}

/** A synchronous method got no reply in time, or a wait exceeded its bound. */
export class TimeoutError extends AmqpError {
  constructor(
    message: string,
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/** The broker nacked a publish (publisher confirms). */
export class NackError extends AmqpError {
  constructor(readonly deliveryTag: number) {
    super(`the broker refused (basic.nack) the publish with delivery tag ${deliveryTag}`);
  }
}

/** A returned message: the body and properties are the broker's copy of what was published. */
export interface ReturnedMessage {
  replyCode: number;
  replyText: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: Record<string, unknown>;
}

/** A `mandatory` publish that no queue could take (`basic.return` 312 NO_ROUTE). */
export class UnroutableError extends AmqpError {
  readonly replyCode: number;
  readonly replyText: string;
  constructor(readonly returned: ReturnedMessage) {
    super(
      `message to exchange '${returned.exchange}' with routing key '${returned.routingKey}' was returned: ${returned.replyCode} ${returned.replyText}`,
    );
    this.replyCode = returned.replyCode;
    this.replyText = returned.replyText;
  }
}

/** Publishing was blocked (`connection.blocked`) for longer than `blocked_connection_timeout`. */
export class BlockedTimeoutError extends TimeoutError {}

/** The outage buffer is full (count or bytes). */
export class BufferOverflowError extends AmqpError {}

/** A message whose body exceeded `maxMessageSize`: its body was skipped unread (see Channel `messageTooLarge`). */
export interface OversizedMessage {
  /** How it arrived: to a consumer, as a basic.get reply, or as a basic.return. */
  kind: 'deliver' | 'get' | 'return';
  /** The body size the broker announced, bytes. */
  size: number;
  /** The connection's `maxMessageSize`. */
  limit: number;
  /** The consumer's (or the get's) queue; absent for a return. */
  queue?: string;
  exchange: string;
  routingKey: string;
  messageId?: string;
  /** Absent for a return (nothing to settle). */
  deliveryTag?: number;
}

/** A message over `maxMessageSize` (a basic.get reply): its body was skipped; unless no-ack, it was rejected without requeue. */
export class MessageTooLargeError extends AmqpError {
  readonly size: number;
  readonly limit: number;
  constructor(readonly oversized: OversizedMessage) {
    super(
      `message of ${oversized.size} bytes exceeds maxMessageSize ${oversized.limit}` +
        `${oversized.queue === undefined ? '' : ` (queue '${oversized.queue}')`}: its body was skipped`,
    );
    this.size = oversized.size;
    this.limit = oversized.limit;
  }
}

/** The broker does not announce the capability a method needs (server `capabilities` table): nothing was sent. */
export class UnsupportedError extends AmqpError {
  constructor(
    readonly capability: string,
    operation: string,
  ) {
    super(`${operation}: the broker does not support ${capability} (not in its capabilities); nothing was sent`);
  }
}

/**
 * One step of bringing a session up failed (a publisher channel refused confirm mode, a consumer's
 * queue refused...): `entity` names the step, `cause` is the real error (the broker's, with its reply
 * code). What a `failFast` connect() rejects with when a setup step fails.
 */
export class SetupError extends AmqpError {
  /** The broker's reply code, when the cause carries one. */
  readonly replyCode: number | undefined;

  constructor(
    readonly entity: string,
    cause: Error,
  ) {
    super(`${entity}: ${cause.message}`, { cause });
    const code = (cause as { replyCode?: unknown }).replyCode;
    this.replyCode = typeof code === 'number' ? code : undefined;
  }
}
