/**
 * Unknown-key checks of the Nest layer's options, at every level (module, async module, feature, server, client,
 * publishers, handler options and their bindings), as `checkSessionOptions` does for the session's: a misspelt option
 * (`client.replyQueu`) is a ConfigError naming it, never silently ignored. Values are checked where they are used
 * (the session, the topology plan, the retry policy, the client's reply options).
 */
import { ConfigError } from '../amqp';
import type { SessionOptions } from '../amqp';
import { checkKnownKeys } from '../amqp/declare-options';
import { SESSION_OPTION_KEYS } from '../amqp/session-options';
import type {
  AmqpClientOptions,
  AmqpConnectionOptions,
  AmqpFeatureOptions,
  AmqpHandlerOptions,
  AmqpModuleAsyncOptions,
  AmqpModuleOptions,
  AmqpModuleRootOptions,
  AmqpPublisherDefinition,
  AmqpServerOptions,
  HandlerBinding,
} from './amqp-options.interface';

/** Every key of `T`, each listed once: an option added to an interface and not here does not compile. */
type KeysOf<T> = { readonly [K in keyof Required<T>]: true };

const keys = <T>(record: KeysOf<T>): readonly string[] => Object.keys(record);

const CONNECTION_KEYS: readonly string[] = [
  ...SESSION_OPTION_KEYS,
  ...keys<Omit<AmqpConnectionOptions, keyof SessionOptions>>({ startupTimeout: true, startWithoutBroker: true }),
];

type ServerOnly = Omit<AmqpServerOptions, keyof AmqpConnectionOptions>;
const SERVER_KEYS = keys<ServerOnly>({
  session: true,
  defaults: true,
  topology: true,
  serializer: true,
  deserializer: true,
  shutdownTimeout: true,
});

type ClientOnly = Omit<AmqpClientOptions, keyof AmqpConnectionOptions>;
const CLIENT_KEYS = keys<ClientOnly>({
  session: true,
  exchange: true,
  routingKey: true,
  queue: true,
  replyTo: true,
  replyQueue: true,
  confirmRequests: true,
  timeout: true,
  expireRequests: true,
  persistent: true,
  mandatory: true,
  headers: true,
  priority: true,
  expiration: true,
  appId: true,
  serializer: true,
  deserializer: true,
});

const MODULE_KEYS = keys<Omit<AmqpModuleOptions, keyof AmqpConnectionOptions>>({
  topology: true,
  publishers: true,
  server: true,
  client: true,
  shutdownTimeout: true,
  serializer: true,
  deserializer: true,
});

const ROOT_KEYS = keys<Omit<AmqpModuleRootOptions, keyof AmqpModuleOptions>>({ isGlobal: true });

const ASYNC_KEYS = keys<AmqpModuleAsyncOptions>({
  imports: true,
  name: true,
  isGlobal: true,
  useFactory: true,
  inject: true,
  publishers: true,
});

const FEATURE_KEYS = keys<AmqpFeatureOptions>({ connection: true, publishers: true });

const PUBLISHER_KEYS = keys<AmqpPublisherDefinition>({
  name: true,
  exchange: true,
  routingKey: true,
  persistent: true,
  mandatory: true,
  headers: true,
  appId: true,
  serializer: true,
});

const HANDLER_KEYS = keys<AmqpHandlerOptions>({
  connection: true,
  queue: true,
  exchange: true,
  bindings: true,
  prefetch: true,
  concurrency: true,
  ack: true,
  priority: true,
  offset: true,
  offsetStore: true,
  batch: true,
  schema: true,
  retry: true,
  serializer: true,
  deserializer: true,
  topology: true,
});

const BINDING_KEYS = keys<HandlerBinding>({ exchange: true, routingKey: true, arguments: true });

/** `where.key`, or `key` at the top level. */
const field = (where: string, key: string): string => (where === '' ? key : `${where}.${key}`);

/** The object's keys, each known; `undefined` is an absent object. Returns the object to read nested ones from. */
function checkKeys(where: string, value: unknown, known: readonly string[], what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(where === '' ? 'options' : where, `${what} options must be an object`);
  }
  checkKnownKeys(where, value, known, what);
  return value as Record<string, unknown>;
}

function checkList(where: string, value: unknown, check: (where: string, item: unknown) => void): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw new ConfigError(where, 'must be an array');
  value.forEach((item, i) => check(`${where}[${i}]`, item));
}

function checkPublisher(where: string, value: unknown): void {
  checkKeys(where, value, PUBLISHER_KEYS, 'publisher');
}

/** A handler's options (`@MessagePattern` / `@EventPattern` extras, `@AmqpController`, server defaults). */
export function checkHandlerOptions(where: string, value: unknown): void {
  const o = checkKeys(where, value, HANDLER_KEYS, 'handler');
  checkList(field(where, 'bindings'), o.bindings, (at, b) => checkKeys(at, b, BINDING_KEYS, 'binding'));
}

function checkServerPart(where: string, o: Record<string, unknown>): void {
  checkHandlerOptions(field(where, 'defaults'), o.defaults);
}

/** `new AmqpServer(options)`. */
export function checkServerOptions(options: unknown): void {
  checkServerPart('', checkKeys('', options, [...CONNECTION_KEYS, ...SERVER_KEYS], 'server'));
}

/** `new AmqpClient(options)` (also through `ClientsModule.register`). */
export function checkClientOptions(options: unknown): void {
  checkKeys('', options, [...CONNECTION_KEYS, ...CLIENT_KEYS], 'client');
}

/** `AmqpModule.forRoot(options)` (`root`), or what a `forRootAsync` factory returned. */
export function checkModuleOptions(options: unknown, root = false): void {
  // A forRootAsync factory that returned nothing would otherwise connect with every default.
  if (options === undefined) throw new ConfigError('options', 'module options must be an object, got undefined');
  const known = [...CONNECTION_KEYS, ...MODULE_KEYS, ...(root ? ROOT_KEYS : [])];
  const o = checkKeys('', options, known, 'module');
  const server = checkKeys(
    'server',
    o.server,
    SERVER_KEYS.filter((k) => k !== 'session'),
    'server',
  );
  checkServerPart('server', server);
  checkKeys(
    'client',
    o.client,
    CLIENT_KEYS.filter((k) => k !== 'session'),
    'client',
  );
  checkList('publishers', o.publishers, checkPublisher);
}

/** `AmqpModule.forRootAsync(options)` itself (the factory's result is checked when it resolves). */
export function checkAsyncModuleOptions(options: unknown): void {
  const o = checkKeys('', options, ASYNC_KEYS, 'async module');
  checkList('publishers', o.publishers, checkPublisher);
}

/** `AmqpModule.forFeature(options)`: `{ connection, publishers }` or the publishers alone. */
export function checkFeatureOptions(options: unknown): void {
  if (Array.isArray(options)) checkList('publishers', options, checkPublisher);
  else checkList('publishers', checkKeys('', options, FEATURE_KEYS, 'feature').publishers, checkPublisher);
}
