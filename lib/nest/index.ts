// The Nest layer's public names. An explicit list: what is not named here is internal (other lib files import it by
// its path), and test/unit/public-exports.spec.ts fails when a name appears or vanishes without its list being updated.

// Module, options and injection
export { AmqpModule } from './amqp.module';
export type {
  AckMode,
  BatchOptions,
  RetryBackoff,
  RetryPolicy,
  HandlerBinding,
  AmqpHandlerOptions,
  AmqpConnectionOptions,
  AmqpServerOptions,
  ReplyMode,
  AmqpClientOptions,
  AmqpPublisherDefinition,
  AmqpModuleOptions,
  AmqpModuleRootOptions,
  AmqpModuleAsyncOptions,
  AmqpFeatureOptions,
} from './amqp-options.interface';
export {
  InjectPublisher,
  InjectAmqpSession,
  InjectAmqpClient,
  InjectAmqpServer,
  InjectAmqpHealthIndicator,
} from './decorators/inject.decorators';
export {
  WARREN_TRANSPORT,
  WarrenHeaders,
  getAmqpSessionToken,
  getAmqpServerToken,
  getAmqpClientToken,
  getAmqpHealthIndicatorToken,
  getPublisherToken,
} from './amqp.constants';
export { AmqpStartupError } from './amqp.session-factory';

// Handlers
export { AmqpController } from './decorators/amqp-controller.decorator';
export { AmqpMessagePattern, AmqpEventPattern } from './decorators/pattern.decorators';
export { AmqpServer, type AmqpServerStatus } from './server/amqp.server';
export { AmqpContext } from './ctx-host/amqp.context';
export { AmqpBatchContext } from './ctx-host/amqp-batch.context';
export { AmqpRpcError, type RpcErrorEnvelope } from './server/rpc-error';
export { parkingLotName, retryQueueName } from './retry/retry-policy';

// Sending
export { AmqpClient, type AmqpClientStatus } from './client/amqp.client';
export type { AmqpSessionStatus } from './amqp.session-status';
export { DirectReplyToUnavailableError } from './client/direct-reply-unavailable.error';
export { AmqpPublisher, type PublishCallOptions } from './publisher/amqp.publisher';
export { AmqpRecord, AmqpRecordBuilder, type AmqpRecordOptions } from './record-builders/amqp.record-builder';

// Serialization
export type { AmqpSerializer, AmqpDeserializer, SerializedBody } from './serialization/amqp-serializer.interface';
export { DefaultSerializer, DefaultDeserializer, DeserializationError } from './serialization/default.serializer';

// Topology
export type {
  ExchangeType,
  ExchangeDefinition,
  QueueDefinition,
  QueueBindingDefinition,
  ExchangeBindingDefinition,
  TopologyDefinition,
} from './topology/topology.interface';
export {
  TopologyError,
  TopologyMismatchError,
  TopologyConflictError,
  type TopologyEntity,
} from './topology/topology.errors';

// Health
export {
  AmqpHealthIndicator,
  AmqpHealthCheckError,
  type AmqpHealthIndicatorResult,
} from './health/amqp.health-indicator';

// AsyncAPI and payload schemas
export { AmqpAsyncApi } from './asyncapi/amqp-asyncapi';
export { generateAsyncApi, type GenerateAsyncApiOptions } from './asyncapi/generate-asyncapi';
export type {
  AmqpChannelBinding,
  AmqpOperationBinding,
  AsyncApiChannel,
  AsyncApiDocument,
  AsyncApiInfo,
  AsyncApiMessage,
  AsyncApiOperation,
  AsyncApiOperationReply,
  AsyncApiReference,
  AsyncApiServer,
  JsonValue,
  WarrenBinding,
} from './asyncapi/asyncapi-document';
export {
  VALIDATION_FAILED,
  type HandlerSchema,
  type StandardSchemaIssue,
  type StandardSchemaProps,
  type StandardSchemaResult,
  type StandardSchemaV1,
} from './schema/payload-schema';
export type { JsonSchema, PayloadIssue } from './schema/json-schema-subset';
