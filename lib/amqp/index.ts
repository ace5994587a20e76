export * from './errors';
export * from './options';
export { AmqpConnection, type ConnectOptions, type ConnectionEvents } from './connection';
export {
  Channel,
  type ChannelEvents,
  type ExchangeOptions,
  type QueueOptions,
  type QueueDeclareResult,
  type OperationOptions,
} from './channel';
export {
  resolveQueueSettings,
  resolveExchangeSettings,
  checkExchangeType,
  checkKnownKeys,
  describeQueue,
  describeExchange,
  type QueueSettings,
  type QueueShorthands,
  type QueueType,
  type QueueOverflow,
  type ExchangeSettings,
  type DeclareCallOptions,
  type QueueDeclaration,
  type ExchangeDeclaration,
} from './declare-options';
export {
  ConsumerStream,
  ConsumerCancelledError,
  type Consumer,
  type ConsumeOptions,
  type MessageHandler,
} from './consumer';
export type { Message, MessageFields, PublishOptions } from './message';
export type { Logger } from './logger';
export { AmqpDecimal, type FieldTable, type FieldValue } from './protocol/field-table';
export { DecodedProperties, type MessageProperties } from './protocol/properties';
export { resolveConnectionOptions, parseAmqpUrl, redactUrl, describeEndpoint } from './url';
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
export { ChannelPool, type ChannelPoolOptions } from './channel-pool';
export { type BackoffOptions, backoffDelay } from './backoff';
export { type ReconnectOptions } from './reconnect-policy';
export { RecoverableChannel, type RecoverableChannelEvents } from './recoverable-channel';
