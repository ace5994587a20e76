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
  /** AMQP class id of the method (e.g. 50 for `queue`). */
  classId: number;
  /** AMQP method id within its class (e.g. 10 for `queue.declare`). */
  methodId: number;
  /** e.g. `queue.declare`; empty when the broker named no method. */
  methodName: string;
}

/** A malformed or unexpected frame: reply codes 501 (frame), 502 (syntax), 503 (command invalid), 505 (unexpected frame). */
export class ProtocolError extends AmqpError {
  constructor(
    message: string,
    /** The reply code the connection was closed with (501 by default). */
    readonly replyCode: number = ReplyCode.FRAME_ERROR,
  ) {
    super(message);
  }
}

/** Invalid options, URL or arguments given by the caller. `field` names the offending field. */
export class ConfigError extends AmqpError {
  constructor(
    /** The option at fault, as a path: `heartbeat`, `tls.key`, `reconnect.maxDelayMs`, `queue 'orders'.typ`... */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A value that cannot be encoded on the wire (bad field-table value, string too long...). */
export class EncodeError extends AmqpError {
  constructor(
    /** The field that cannot be encoded (`routingKey`, `headers.x-foo`, `prefetchCount`...). */
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
    /** The broker's reply code (e.g. 320 CONNECTION_FORCED, 403 ACCESS_REFUSED, 530 NOT_ALLOWED). */
    readonly replyCode: number,
    /** The broker's reply text. */
    readonly replyText: string,
    /** The method the broker refused, when it named one. */
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

/** A rotating-credentials provider threw (e.g. its vault is down): retried like a failed connect. */
export class CredentialsError extends AmqpError {}

/**
 * TLS refused the broker's certificate: no or a wrong CA, a server name the certificate does not carry,
 * an expired or self-signed certificate. `code` is Node's verification code (e.g.
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_TLS_CERT_ALTNAME_INVALID`). Not retried once every URL of a
 * round has refused its certificate: retrying cannot fix a trust setting.
 */
export class CertificateError extends AmqpError {
  constructor(
    message: string,
    /** Node's TLS verification code, such as `UNABLE_TO_VERIFY_LEAF_SIGNATURE` or `ERR_TLS_CERT_ALTNAME_INVALID`. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** No frame arrived for 2 × heartbeat: the peer is considered dead. */
export class HeartbeatTimeoutError extends ConnectionLostError {
  constructor(
    /** The negotiated heartbeat interval, seconds. */
    readonly heartbeatSeconds: number,
  ) {
    super(
      `no frame from the broker for ${2 * heartbeatSeconds}s (heartbeat ${heartbeatSeconds}s): peer considered dead`,
    );
  }
}

/** The channel was closed by the broker (`channel.close`); only that channel is affected. */
export class ChannelError extends AmqpError {
  constructor(
    message: string,
    /** The broker's reply code (e.g. 404 NOT_FOUND, 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED). */
    readonly replyCode: number,
    /** The broker's reply text (e.g. `NOT_FOUND - no queue 'orders' in vhost '/'`). */
    readonly replyText: string,
    /** The method the broker refused, when it named one (e.g. `queue.declare`). */
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
    /** What timed out: a method name (`queue.declare`), `publish confirm`, `publish`, `connect`, `send <pattern>`... */
    readonly operation: string,
    /** The bound that was exceeded, ms. */
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/** The broker nacked a publish (publisher confirms). */
export class NackError extends AmqpError {
  constructor(
    /** The publish's delivery tag on its channel. */
    readonly deliveryTag: number,
  ) {
    super(`the broker refused (basic.nack) the publish with delivery tag ${deliveryTag}`);
  }
}

/** A returned message: the body and properties are the broker's copy of what was published. */
export interface ReturnedMessage {
  /** Why it came back: 312 NO_ROUTE (mandatory), 313 NO_CONSUMERS (immediate), 311 CONTENT_TOO_LARGE. */
  replyCode: number;
  /** The broker's reply text (`NO_ROUTE`...). */
  replyText: string;
  /** The exchange it was published to. */
  exchange: string;
  /** The routing key it was published with. */
  routingKey: string;
  /** The body (empty when it was over `maxMessageSize` and skipped). */
  body: Buffer;
  /** Its basic properties, as a plain object (`contentType`, `headers`, `messageId`...). */
  properties: Record<string, unknown>;
}

/** A `mandatory` publish that no queue could take (`basic.return` 312 NO_ROUTE). */
export class UnroutableError extends AmqpError {
  /** The return's reply code: 312 NO_ROUTE for a mandatory publish. */
  readonly replyCode: number;
  /** The return's reply text. */
  readonly replyText: string;
  constructor(
    /** The broker's copy of the message it returned. */
    readonly returned: ReturnedMessage,
  ) {
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
  /** The exchange it was published to. */
  exchange: string;
  /** Its routing key. */
  routingKey: string;
  /** Its `message-id` property, when set (properties are read; only the body is skipped). */
  messageId?: string;
  /** Absent for a return (nothing to settle). */
  deliveryTag?: number;
}

/** A message over `maxMessageSize` (a basic.get reply): its body was skipped; unless no-ack, it was rejected without requeue. */
export class MessageTooLargeError extends AmqpError {
  /** The body size the broker announced, bytes. */
  readonly size: number;
  /** The connection's `maxMessageSize`, bytes. */
  readonly limit: number;
  constructor(
    /** Everything known about the skipped message. */
    readonly oversized: OversizedMessage,
  ) {
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
    /** The capability: `exchange_exchange_bindings`, `basic.nack`, `publisher_confirms` or `consumer_cancel_notify`. */
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
    /** The step that failed, e.g. `publisher channel 1 of 4` or `consumer on queue 'orders'`. */
    readonly entity: string,
    cause: Error,
  ) {
    super(`${entity}: ${cause.message}`, { cause });
    const code = (cause as { replyCode?: unknown }).replyCode;
    this.replyCode = typeof code === 'number' ? code : undefined;
  }
}
