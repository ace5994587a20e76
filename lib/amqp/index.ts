/**
 * `nestjs-warren/amqp`: the framework-free AMQP 0-9-1 client, and nothing of the Nest layer (no import of a Nest package,
 * no runtime dependency).
 *
 * @packageDocumentation
 * @module nestjs-warren/amqp
 */
// An explicit list: what is not named here is internal (other lib files import it by its path), and
// test/unit/public-exports.spec.ts fails when a name appears or vanishes without its list being updated.

// Errors
export {
  ReplyCode,
  AmqpError,
  ProtocolError,
  ConfigError,
  EncodeError,
  ConnectionError,
  AuthenticationError,
  VhostError,
  ConnectionLostError,
  HeartbeatTimeoutError,
  ChannelError,
  ClosedError,
  TimeoutError,
  NackError,
  UnroutableError,
  BlockedTimeoutError,
  BufferOverflowError,
  MessageTooLargeError,
  UnsupportedError,
  SetupError,
  CredentialsError,
  CertificateError,
  type FailedMethod,
  type ReturnedMessage,
  type OversizedMessage,
} from './errors';
export { ConsumerCancelledError } from './consumer';

// Connection options
export type { ConnectionOptionsInput, ResolvedConnectionOptions, Endpoint, TlsOptions, SaslMechanism } from './options';
export type { Logger } from './logger';

// One connection and its channels
export { AmqpConnection, type ConnectOptions, type ConnectionEvents } from './connection';
export {
  Channel,
  type ChannelEvents,
  type ExchangeOptions,
  type QueueOptions,
  type QueueDeclareResult,
  type OperationOptions,
} from './channel';
export type {
  QueueSettings,
  QueueShorthands,
  QueueType,
  QueueOverflow,
  ExchangeSettings,
  DeclareCallOptions,
} from './declare-options';
export { ConsumerStream, type Consumer, type ConsumeOptions, type MessageHandler } from './consumer';

// Messages
export type { Message, MessageFields, PublishOptions } from './message';
export type { DecodedProperties, MessageProperties } from './protocol/properties';
export { AmqpDecimal, type FieldTable, type FieldValue } from './protocol/field-table';

// The managed client
export {
  AmqpSession,
  type SessionOptions,
  type SessionMessage,
  type SessionHandler,
  type SessionConsumer,
  type SessionConsumeOptions,
  type SessionEvents,
  type SessionRole,
  type PublishBufferOptions,
  type SetupFailure,
} from './session';
export type { StreamOffset, StreamOffsetStore } from './stream-offset';
export type { Credentials, CredentialsProvider } from './credentials';
export type { ChannelPoolOptions } from './channel-pool';
export type { BackoffOptions } from './backoff';
export type { ReconnectOptions } from './reconnect-policy';
export { RecoverableChannel, type RecoverableChannelEvents } from './recoverable-channel';
