export * from './amqp.constants';
export * from './amqp-options.interface';
export { AmqpStartupError } from './amqp.session-factory';
export * from './ctx-host/amqp.context';
export * from './record-builders/amqp.record-builder';
export * from './routing/pattern-matcher';
export * from './serialization';
export * from './server/amqp.server';
export * from './server/rpc-error';
export * from './topology/topology.interface';
export * from './topology/topology.errors';
export * from './decorators/amqp-controller.decorator';
export * from './decorators/pattern.decorators';
export * from './decorators/inject.decorators';
export { parkingLotName, retryQueueName } from './retry/retry-policy';
export * from './amqp.module';
export { AmqpConnectionHost } from './amqp.connection-host';
export * from './client/amqp.client';
export * from './publisher/amqp.publisher';
export * from './health/amqp.health-indicator';
export { mergeTopology } from './topology/merge-topology';
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
