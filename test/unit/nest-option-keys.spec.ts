import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AmqpSession, ConfigError } from '../../lib/amqp';
import {
  AmqpClient,
  AmqpModule,
  AmqpServer,
  type AmqpClientOptions,
  type AmqpFeatureOptions,
  type AmqpHandlerOptions,
  type AmqpModuleAsyncOptions,
  type AmqpModuleOptions,
  type AmqpModuleRootOptions,
  type AmqpPublisherDefinition,
  type AmqpServerOptions,
} from '../../lib/nest';
import { configError } from '../support/config-error';
import { planRoutes, registration } from '../support/handler-plan';

Logger.overrideLogger(false);

/** What a JavaScript caller, a config file or a cast may pass: unchecked by the compiler. */
function loose<T>(value: Record<string, unknown>): T {
  return value as T;
}

const URL = 'amqp://127.0.0.1:1';

describe('an unknown Nest option is a ConfigError naming it, at every level', () => {
  it.each<[string, AmqpModuleRootOptions, string]>([
    ['a connection option', loose({ url: URL, hearbeat: 5 }), 'hearbeat'],
    ['a module option', loose({ url: URL, publisher: [] }), 'publisher'],
    ['a client option', loose({ client: { replyTo: 'queue', replyQueu: 'replies' } }), 'client.replyQueu'],
    ['a connection option given to the client', loose({ client: { url: URL } }), 'client.url'],
    ['a server option', loose({ server: { shutdownTimout: 5 } }), 'server.shutdownTimout'],
    ['a server default for handlers', loose({ server: { defaults: { queu: 'q' } } }), 'server.defaults.queu'],
    [
      "a server default's binding",
      loose({ server: { defaults: { bindings: [{ exchange: 'x', routingkey: 'k' }] } } }),
      'server.defaults.bindings[0].routingkey',
    ],
    [
      'a publisher option',
      loose({
        publishers: [
          { name: 'a', exchange: 'x' },
          { name: 'b', exchange: 'x', persistant: true },
        ],
      }),
      'publishers[1].persistant',
    ],
  ])('AmqpModule.forRoot: %s', (_, options, field) => {
    const err = configError(() => AmqpModule.forRoot(options));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(/unknown .*option \(known: /);
  });

  it('AmqpModule.forRoot takes the documented options, nested ones included', () => {
    const options: AmqpModuleRootOptions = {
      url: URL,
      name: 'orders',
      isGlobal: true,
      startupTimeout: 1000,
      startWithoutBroker: true,
      shutdownTimeout: 1000,
      reconnect: { maxDelayMs: 500 },
      topology: { exchanges: [{ name: 'orders', type: 'topic' }] },
      publishers: [{ name: 'orders', exchange: 'orders', routingKey: 'k', persistent: true, mandatory: false }],
      server: { defaults: { queue: 'q', prefetch: 5, bindings: [{ exchange: 'orders' }] }, shutdownTimeout: 10 },
      client: { exchange: 'orders', replyTo: 'queue', replyQueue: 'replies', confirmRequests: true, timeout: 10 },
    };
    expect(() => AmqpModule.forRoot(options)).not.toThrow();
  });

  it('AmqpModule.forRootAsync: an unknown option of its own', () => {
    const options = loose<AmqpModuleAsyncOptions>({ useFactory: () => ({}), isGlobl: true });
    expect(configError(() => AmqpModule.forRootAsync(options)).field).toBe('isGlobl');
  });

  it('AmqpModule.forRootAsync: an unknown option in what the factory returns fails the module', async () => {
    const useFactory = (): AmqpModuleOptions => loose({ url: URL, client: { timeOut: 10 } });
    const compiling = Test.createTestingModule({ imports: [AmqpModule.forRootAsync({ useFactory })] }).compile();
    const err = await compiling.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('client.timeOut');
  });

  it('AmqpModule.forRootAsync: a factory that returns no options fails the module', async () => {
    const useFactory = (): AmqpModuleOptions => undefined as unknown as AmqpModuleOptions;
    const compiling = Test.createTestingModule({ imports: [AmqpModule.forRootAsync({ useFactory })] }).compile();
    const err = await compiling.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('options');
  });

  it.each<[string, AmqpFeatureOptions | AmqpPublisherDefinition[], string]>([
    ['an unknown feature option', loose({ connection: 'default', publisher: [] }), 'publisher'],
    ['an unknown publisher option', [loose({ name: 'a', exchange: 'x', rotingKey: 'k' })], 'publishers[0].rotingKey'],
  ])('AmqpModule.forFeature: %s', (_, options, field) => {
    expect(configError(() => AmqpModule.forFeature(options)).field).toBe(field);
  });

  it.each<[string, AmqpServerOptions, string]>([
    ['a connection option', loose({ url: URL, frame_max: 8192 }), 'frame_max'],
    ['a server option', loose({ url: URL, shutdownTimout: 5 }), 'shutdownTimout'],
    ['a handler default', loose({ url: URL, defaults: { queue: 'q', prefetchh: 5 } }), 'defaults.prefetchh'],
  ])('new AmqpServer: %s', (_, options, field) => {
    expect(configError(() => new AmqpServer(options)).field).toBe(field);
  });

  it.each<[string, AmqpClientOptions, string]>([
    ['a connection option', loose({ url: URL, connectionTimout: 5 }), 'connectionTimout'],
    ['a client option', loose({ url: URL, replyTo: 'queue', replyQueu: 'replies' }), 'replyQueu'],
    ['a server option', loose({ url: URL, defaults: {} }), 'defaults'],
  ])('new AmqpClient: %s', (_, options, field) => {
    expect(configError(() => new AmqpClient(options)).field).toBe(field);
  });

  it.each<[string, AmqpHandlerOptions, string]>([
    ['a handler option', loose({ queue: 'q', ackk: 'manual' }), "handler 'order.created'.ackk"],
    [
      'a binding option',
      loose({ queue: 'q', bindings: [{ exchange: 'x', key: 'k' }] }),
      "handler 'order.created'.bindings[0].key",
    ],
  ])('@EventPattern / @MessagePattern extras and @AmqpController defaults: %s', (_, extras, field) => {
    const plan = (): unknown => planRoutes([registration('order.created', extras)]);
    expect(configError(plan).field).toBe(field);
  });
});

describe('a forRootAsync factory that fails', () => {
  afterEach(() => jest.restoreAllMocks());

  it('fails the module with its error, and no session connects (Nest still builds what depends on it)', async () => {
    const connect = jest.spyOn(AmqpSession.prototype, 'connect');
    const useFactory = (): AmqpModuleOptions => {
      throw new Error('no configuration');
    };
    const compiling = Test.createTestingModule({ imports: [AmqpModule.forRootAsync({ useFactory })] }).compile();
    await expect(compiling).rejects.toThrow('no configuration');
    expect(connect).not.toHaveBeenCalled();
  });
});
