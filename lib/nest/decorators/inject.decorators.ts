import { Inject } from '@nestjs/common';
import {
  getAmqpClientToken,
  getAmqpHealthIndicatorToken,
  getAmqpServerToken,
  getAmqpSessionToken,
  getPublisherToken,
} from '../amqp.constants';

/** Injects the `AmqpPublisher` declared under `name` (module options or `forFeature`). */
export const InjectPublisher = (name: string, connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getPublisherToken(name, connection));

/** Injects a connection's `AmqpSession` (the managed AMQP client). */
export const InjectAmqpSession = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getAmqpSessionToken(connection));

/** Injects a connection's `AmqpClient`. */
export const InjectAmqpClient = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getAmqpClientToken(connection));

/** Injects a connection's DI-managed `AmqpServer`. */
export const InjectAmqpServer = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getAmqpServerToken(connection));

/** Injects a connection's `AmqpHealthIndicator`. */
export const InjectAmqpHealthIndicator = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getAmqpHealthIndicatorToken(connection));
