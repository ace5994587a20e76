import { Module, type DynamicModule, type FactoryProvider, type Provider } from '@nestjs/common';
import { AmqpSession, ConfigError } from '../amqp';
import type {
  AmqpFeatureOptions,
  AmqpModuleAsyncOptions,
  AmqpModuleOptions,
  AmqpModuleRootOptions,
  AmqpPublisherDefinition,
} from './amqp-options.interface';
import {
  DEFAULT_CONNECTION_NAME,
  getAmqpAsyncApiToken,
  getAmqpClientToken,
  getAmqpHealthIndicatorToken,
  getAmqpLifecycleToken,
  getAmqpOptionsToken,
  getAmqpServerToken,
  getAmqpSessionToken,
  getPublisherToken,
} from './amqp.constants';
import { checkAsyncModuleOptions, checkFeatureOptions, checkModuleOptions } from './amqp-options.check';
import { AmqpConnectionHost } from './amqp.connection-host';
import { AmqpAsyncApi } from './asyncapi/amqp-asyncapi';
import { AmqpClient } from './client/amqp.client';
import { AmqpHealthIndicator } from './health/amqp.health-indicator';
import { AmqpServer } from './server/amqp.server';

/**
 * The connection itself: options, session and lifecycle. Always global, so that `forFeature` modules anywhere can
 * reach their connection's session; what the application injects (publishers, client, server, health) lives in
 * AmqpModule, whose visibility `isGlobal` chooses.
 */
@Module({})
export class AmqpCoreModule {
  /** The core module of connection `name` (used by `AmqpModule.forRoot` / `forRootAsync`; not for direct use). */
  static register(name: string, optionsProvider: Provider, imports: DynamicModule['imports'] = []): DynamicModule {
    const hostToken = getAmqpLifecycleToken(name);
    const providers: Provider[] = [
      optionsProvider,
      {
        provide: hostToken,
        useFactory: (options: AmqpModuleOptions | null | undefined) => {
          // Nest still builds the host when a forRootAsync factory failed, with no options: connect to nothing then
          // (start-up reports the factory's error).
          if (options === null || options === undefined)
            throw new ConfigError('options', `connection '${name}' has no options`);
          return AmqpConnectionHost.create({ ...options, name });
        },
        inject: [getAmqpOptionsToken(name)],
      },
      {
        provide: getAmqpSessionToken(name),
        useFactory: (host: AmqpConnectionHost) => host.session,
        inject: [hostToken],
      },
    ];
    return {
      module: AmqpCoreModule,
      global: true,
      imports,
      providers,
      exports: [getAmqpOptionsToken(name), getAmqpSessionToken(name), hostToken],
    };
  }
}

/**
 * Warren's module.
 *
 * - `AmqpModule.forRoot(options)` / `forRootAsync({ imports, useFactory, inject })`: one connection (named with
 *   `name`; several connections, several forRoot calls). Provides the session, the DI-managed `AmqpServer`, an
 *   `AmqpClient`, an `AmqpHealthIndicator`, the connection's `AmqpAsyncApi` and the publishers of `options.publishers`.
 * - `AmqpModule.forFeature({ connection, publishers })`: a feature module's own publishers.
 */
@Module({})
export class AmqpModule {
  /**
   * One connection from static options. Its session connects while the module initialises (start-up fails with
   * {@link AmqpStartupError} after `startupTimeout`, 30 s by default, unless `startWithoutBroker`), then the module
   * topology and the publishers' exchanges are declared (a {@link TopologyMismatchError} or {@link ConfigError} stops
   * start-up). For the `default` connection it also provides `AmqpSession`, `AmqpServer`, `AmqpClient` and
   * `AmqpHealthIndicator` as class tokens; every connection's providers are reachable with `@InjectAmqpSession(name)`
   * and friends.
   */
  static forRoot(options: AmqpModuleRootOptions = {}): DynamicModule {
    checkModuleOptions(options, true);
    const name = options.name ?? DEFAULT_CONNECTION_NAME;
    const { isGlobal, ...rest } = options;
    const optionsProvider: Provider = { provide: getAmqpOptionsToken(name), useValue: { ...rest, name } };
    return AmqpModule.root(name, optionsProvider, undefined, isGlobal, options.publishers ?? []);
  }

  /**
   * One connection whose options come from a factory (`useFactory`, with `imports` and `inject`), e.g. from
   * `ConfigService`. `name` and the publishers' names must be given here, before the factory runs.
   */
  static forRootAsync(options: AmqpModuleAsyncOptions): DynamicModule {
    checkAsyncModuleOptions(options);
    const name = options.name ?? DEFAULT_CONNECTION_NAME;
    const optionsProvider: FactoryProvider = {
      provide: getAmqpOptionsToken(name),
      useFactory: async (...args: never[]): Promise<AmqpModuleOptions> => {
        const resolved = await options.useFactory(...args);
        checkModuleOptions(resolved);
        return { ...resolved, name, publishers: resolved.publishers ?? options.publishers };
      },
      inject: options.inject ?? [],
    };
    return AmqpModule.root(name, optionsProvider, options.imports, options.isGlobal, options.publishers ?? []);
  }

  /**
   * A feature module's own publishers on a connection of the app (`forRoot` must be imported somewhere). Each
   * publisher's exchange is declared when the feature module starts. Pass the publishers alone for the default
   * connection.
   */
  static forFeature(options: AmqpFeatureOptions | AmqpPublisherDefinition[]): DynamicModule {
    checkFeatureOptions(options);
    const { connection = DEFAULT_CONNECTION_NAME, publishers } = Array.isArray(options)
      ? { publishers: options }
      : options;
    const providers: FactoryProvider[] = publishers.map((definition) => ({
      provide: getPublisherToken(definition.name, connection),
      useFactory: (host: AmqpConnectionHost) => host.createFeaturePublisher(definition),
      inject: [getAmqpLifecycleToken(connection)],
    }));
    return { module: AmqpModule, providers, exports: providers.map((p) => p.provide) };
  }

  private static root(
    name: string,
    optionsProvider: Provider,
    imports: DynamicModule['imports'],
    isGlobal: boolean | undefined,
    publishers: AmqpPublisherDefinition[],
  ): DynamicModule {
    const host = [getAmqpLifecycleToken(name)];
    const providers: Provider[] = [
      { provide: getAmqpServerToken(name), useFactory: (h: AmqpConnectionHost) => h.createServer(), inject: host },
      { provide: getAmqpClientToken(name), useFactory: (h: AmqpConnectionHost) => h.createClient(), inject: host },
      {
        provide: getAmqpHealthIndicatorToken(name),
        useFactory: (h: AmqpConnectionHost) => h.createHealthIndicator(),
        inject: host,
      },
      {
        provide: getAmqpAsyncApiToken(name),
        useFactory: (h: AmqpConnectionHost, s: AmqpServer) => new AmqpAsyncApi(h, s),
        inject: [...host, getAmqpServerToken(name)],
      },
      ...publishers.map((p): Provider => ({
        provide: getPublisherToken(p.name, name),
        useFactory: (h: AmqpConnectionHost) => h.createPublisher(p),
        inject: host,
      })),
    ];
    if (name === DEFAULT_CONNECTION_NAME) {
      providers.push(
        { provide: AmqpServer, useExisting: getAmqpServerToken(name) },
        { provide: AmqpClient, useExisting: getAmqpClientToken(name) },
        { provide: AmqpHealthIndicator, useExisting: getAmqpHealthIndicatorToken(name) },
        { provide: AmqpAsyncApi, useExisting: getAmqpAsyncApiToken(name) },
        { provide: AmqpSession, useExisting: getAmqpSessionToken(name) },
      );
    }
    const tokens = providers.map((p) => (typeof p === 'function' ? p : p.provide));
    return {
      module: AmqpModule,
      global: isGlobal ?? false,
      imports: [AmqpCoreModule.register(name, optionsProvider, imports)],
      providers,
      exports: tokens,
    };
  }
}
