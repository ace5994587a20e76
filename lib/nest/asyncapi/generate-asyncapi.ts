import type { DynamicModule, LoggerService, LogLevel, Type } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { AsyncMicroserviceOptions } from '@nestjs/microservices';
import { ConfigError } from '../../amqp';
import { DEFAULT_CONNECTION_NAME, getAmqpAsyncApiToken, getAmqpServerToken } from '../amqp.constants';
import type { AmqpServer } from '../server/amqp.server';
import type { AmqpAsyncApi } from './amqp-asyncapi';
import type { AsyncApiDocument, AsyncApiInfo } from './asyncapi-document';
import { describeOnly } from './describe-only';

/** What `generateAsyncApi` describes and how it boots the app: the connection, the document's `info`, Nest's logger. */
export interface GenerateAsyncApiOptions {
  /** Which Warren connection to describe. Default 'default'. */
  connection?: string;
  /** The document's `info`; see `AmqpAsyncApi.document`. */
  info?: Partial<AsyncApiInfo>;
  /** Nest's logger for the boot (`NestFactory`'s `logger` option). Default: Nest's own. */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Boots the application module as a Warren microservice without opening any connection (nothing is declared,
 * consumed or published), lets Nest register its handlers, returns the AsyncAPI 3.0 document of one connection and
 * closes the app. Providers are created and `onModuleInit` / `onApplicationBootstrap` hooks run as in a real start;
 * whatever they publish is refused (the connection is not opened). What `warren asyncapi` runs.
 */
export async function generateAsyncApi(
  module: Type<unknown> | DynamicModule,
  options: GenerateAsyncApiOptions = {},
): Promise<AsyncApiDocument> {
  const connection = options.connection ?? DEFAULT_CONNECTION_NAME;
  // Loaded here: nothing else of the package needs @nestjs/core.
  const core = await import('@nestjs/core');
  return describeOnly(async () => {
    const app = await core.NestFactory.createMicroservice<AsyncMicroserviceOptions>(module, {
      inject: [core.ModuleRef],
      useFactory: (modules: ModuleRef) => ({ strategy: serverOf(modules, connection) }),
      abortOnError: false,
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    try {
      await app.init();
      return app.get<AmqpAsyncApi>(getAmqpAsyncApiToken(connection), { strict: false }).document(options.info);
    } finally {
      await app.close();
    }
  });
}

/** The DI-managed server of `connection`; a ConfigError when the module has no such connection. */
function serverOf(modules: ModuleRef, connection: string): AmqpServer {
  try {
    return modules.get<AmqpServer>(getAmqpServerToken(connection), { strict: false });
  } catch {
    throw new ConfigError(
      'connection',
      `the module has no Warren connection '${connection}' (AmqpModule.forRoot({ name: '${connection}' }))`,
    );
  }
}
