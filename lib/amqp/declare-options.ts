import { ConfigError } from './errors';
import { checkBoolean as checkBooleanOption, checkString as checkStringOption } from './option-checks';
import type { FieldTable, FieldValue } from './protocol/field-table';

/**
 * Queue and exchange declaration options: the one definition the client (`Channel`, `AmqpSession`) and the Nest
 * topology share. Every key is checked (an unknown key is a ConfigError naming it: a misspelt option must not
 * declare something else, silently), every value too, and the shorthands become their `x-` arguments.
 */

/**
 * `x-queue-type`: `classic` (one node), `quorum` (replicated, Raft: survives a node while a majority is up) or
 * `stream` (replicated append-only log).
 */
export type QueueType = 'classic' | 'quorum' | 'stream';

/**
 * `x-overflow`, what a full queue (`maxLength` / `maxLengthBytes`) does: `drop-head` drops (or dead-letters) the
 * oldest message (RabbitMQ's default), `reject-publish` refuses new ones (a confirm-mode publish is nacked:
 * {@link NackError}), `reject-publish-dlx` refuses them and dead-letters them.
 */
export type QueueOverflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/** Shorthands for the usual queue `x-` arguments. */
export interface QueueShorthands {
  /** `x-queue-type`. Quorum and stream queues must be durable, neither exclusive nor auto-delete. */
  type?: QueueType;
  /** `x-dead-letter-exchange` ('' = the default exchange). */
  deadLetterExchange?: string;
  /** `x-dead-letter-routing-key`. */
  deadLetterRoutingKey?: string;
  /** `x-message-ttl`, ms (0 or more). */
  messageTtl?: number;
  /** `x-expires`, ms (1 or more): delete the queue after this long unused. */
  expires?: number;
  /** `x-max-length`, messages. */
  maxLength?: number;
  /** `x-max-length-bytes`. */
  maxLengthBytes?: number;
  /** `x-overflow`: what happens when a max-length is reached. */
  overflow?: QueueOverflow;
  /** `x-single-active-consumer`. */
  singleActiveConsumer?: boolean;
  /** `x-max-priority`, 1 to 255 (classic queues). */
  maxPriority?: number;
  /** `x-delivery-limit` (quorum queues): deliveries of a message before it is dead-lettered or dropped. */
  deliveryLimit?: number;
  /** `x-max-age` (stream queues): how long a stream keeps messages, e.g. `'7D'`, `'12h'` (units Y, M, D, h, m, s). */
  maxAge?: string;
  /** `x-stream-max-segment-size-bytes` (stream queues): the size of a stream's segment files. */
  streamMaxSegmentSizeBytes?: number;
}

/** What a queue is: its flags and arguments. A shorthand and an explicit `arguments` entry must agree. */
export interface QueueSettings extends QueueShorthands {
  /** Survives a broker restart. Default true for named queues, false for server-named ones. */
  durable?: boolean;
  /** Only this connection may use it, and it is deleted when the connection closes. Default false. */
  exclusive?: boolean;
  /** Deleted when its last consumer is cancelled (once it has had one). Default false. */
  autoDelete?: boolean;
  /** Queue arguments (`x-…`); a shorthand and its entry here must agree. */
  arguments?: FieldTable;
}

/** How one declare call is made. */
export interface DeclareCallOptions {
  /** Only check that the entity exists (404 otherwise). */
  passive?: boolean;
  /** Send without waiting for the broker's `declare-ok` (a refusal then closes the channel later). Default false. */
  noWait?: boolean;
  /** Milliseconds; default from the connection's operationTimeout. */
  timeout?: number;
}

/** Options of `queueDeclare` on a {@link Channel} or an `AmqpSession`: the queue's settings and the call's. */
export interface QueueOptions extends QueueSettings, DeclareCallOptions {}

/** What an exchange is, besides its type. */
export interface ExchangeSettings {
  /** Survives a broker restart. Default true. */
  durable?: boolean;
  /** Deleted when its last binding is removed (once it has had one). Default false. */
  autoDelete?: boolean;
  /** Only other exchanges may publish to it (through exchange-to-exchange bindings). Default false. */
  internal?: boolean;
  /** The `alternate-exchange` argument (no `x-`): where messages go that no binding routes. */
  alternateExchange?: string;
  /** Exchange arguments; `alternateExchange` and an `alternate-exchange` entry here must agree. */
  arguments?: FieldTable;
}

/** Options of `exchangeDeclare` on a {@link Channel} or an `AmqpSession`: the exchange's settings and the call's. */
export interface ExchangeOptions extends ExchangeSettings, DeclareCallOptions {}

/** The `queue.declare` fields a queue's settings come to. */
export interface QueueDeclaration {
  /** The `durable` flag. */
  durable: boolean;
  /** The `exclusive` flag. */
  exclusive: boolean;
  /** The `auto-delete` flag. */
  autoDelete: boolean;
  /** The arguments, shorthands folded in (`type: 'quorum'` is `x-queue-type: 'quorum'` here). */
  arguments: FieldTable;
}

/** The `exchange.declare` fields an exchange's settings come to. */
export interface ExchangeDeclaration {
  /** The `durable` flag. */
  durable: boolean;
  /** The `auto-delete` flag. */
  autoDelete: boolean;
  /** The `internal` flag. */
  internal: boolean;
  /** The arguments, `alternateExchange` folded in as `alternate-exchange`. */
  arguments: FieldTable;
}

export interface ResolvedDeclareCall {
  passive: boolean;
  noWait: boolean;
  timeout?: number;
}

type Check = (field: string, value: unknown) => FieldValue;

interface Shorthand {
  argument: string;
  check: Check;
}

function oneOf(values: readonly string[]): Check {
  return (field, value) => {
    if (typeof value === 'string' && values.includes(value)) return value;
    const shown = typeof value === 'string' ? `'${value}'` : `a ${typeof value}`;
    throw new ConfigError(field, `must be one of ${values.map((v) => `'${v}'`).join(', ')}, got ${shown}`);
  };
}

function integer(min: number, max: number): Check {
  return (field, value) => {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    const shown = typeof value === 'number' ? String(value) : `a ${typeof value}`;
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${shown}`);
  };
}

const checkString: Check = (field, value) => checkStringOption(field, value);

/** RabbitMQ's duration format (`x-max-age`, a stream offset back from now): a positive integer and one unit. */
export const RABBIT_DURATION = /^[1-9][0-9]*[YMDhms]$/;

const checkAge: Check = (field, value) => {
  if (typeof value === 'string' && RABBIT_DURATION.test(value)) return value;
  const shown = typeof value === 'string' ? `'${value}'` : `a ${typeof value}`;
  throw new ConfigError(
    field,
    `must be a duration such as '7D', '12h' or '30m' (units Y, M, D, h, m, s), got ${shown}`,
  );
};

const checkBoolean: Check = (field, value) => checkBooleanOption(field, value);

const UINT32_MAX = 2 ** 32 - 1;

/** The table is typed by QueueShorthands: a shorthand added there without its argument does not compile. */
const QUEUE_SHORTHANDS: Record<keyof QueueShorthands, Shorthand> = {
  type: { argument: 'x-queue-type', check: oneOf(['classic', 'quorum', 'stream']) },
  deadLetterExchange: { argument: 'x-dead-letter-exchange', check: checkString },
  deadLetterRoutingKey: { argument: 'x-dead-letter-routing-key', check: checkString },
  messageTtl: { argument: 'x-message-ttl', check: integer(0, UINT32_MAX) },
  expires: { argument: 'x-expires', check: integer(1, UINT32_MAX) },
  maxLength: { argument: 'x-max-length', check: integer(0, Number.MAX_SAFE_INTEGER) },
  maxLengthBytes: { argument: 'x-max-length-bytes', check: integer(0, Number.MAX_SAFE_INTEGER) },
  overflow: { argument: 'x-overflow', check: oneOf(['drop-head', 'reject-publish', 'reject-publish-dlx']) },
  singleActiveConsumer: { argument: 'x-single-active-consumer', check: checkBoolean },
  maxPriority: { argument: 'x-max-priority', check: integer(1, 255) },
  deliveryLimit: { argument: 'x-delivery-limit', check: integer(0, Number.MAX_SAFE_INTEGER) },
  maxAge: { argument: 'x-max-age', check: checkAge },
  streamMaxSegmentSizeBytes: {
    argument: 'x-stream-max-segment-size-bytes',
    check: integer(1, Number.MAX_SAFE_INTEGER),
  },
};

const EXCHANGE_SHORTHANDS: Record<'alternateExchange', Shorthand> = {
  alternateExchange: { argument: 'alternate-exchange', check: checkString },
};

const QUEUE_FLAGS = ['durable', 'exclusive', 'autoDelete'] as const;
const EXCHANGE_FLAGS = ['durable', 'autoDelete', 'internal'] as const;
const CALL_KEYS = ['passive', 'noWait', 'timeout'] as const;

/** Keys of a queue's settings (what a topology definition may hold besides its own fields). */
export const QUEUE_SETTING_KEYS: readonly string[] = [...QUEUE_FLAGS, ...Object.keys(QUEUE_SHORTHANDS), 'arguments'];
/** Keys of an exchange's settings. */
export const EXCHANGE_SETTING_KEYS: readonly string[] = [
  ...EXCHANGE_FLAGS,
  ...Object.keys(EXCHANGE_SHORTHANDS),
  'arguments',
];

/** `queue 'orders'`, or `server-named queue`: how errors name a queue. */
export function describeQueue(name: string): string {
  return name === '' ? 'server-named queue' : `queue '${name}'`;
}

/** `exchange 'orders'`, or `default exchange`: how errors name an exchange. */
export function describeExchange(name: string): string {
  return name === '' ? 'default exchange' : `exchange '${name}'`;
}

/** Throws a ConfigError `${where}.${key}` (`key` at the top level, `where` ''), for the first key of `value` not in `known`. */
export function checkKnownKeys(where: string, value: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ConfigError(
        where === '' ? key : `${where}.${key}`,
        `unknown ${what} option (known: ${known.join(', ')})`,
      );
    }
  }
}

/** Checks that `value` is an object to read options from (undefined counts as empty). */
function checkOptionsObject(where: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new ConfigError(where, `options must be an object, got ${value === null ? 'null' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

function checkArguments(where: string, value: unknown): FieldTable {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new ConfigError(`${where}.arguments`, 'must be a field table (a plain object)');
  }
  return { ...(value as FieldTable) };
}

function flag(where: string, o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = o[key];
  return value === undefined ? fallback : (checkBoolean(`${where}.${key}`, value) as boolean);
}

function sameValue(shorthand: FieldValue, explicit: FieldValue): boolean {
  if (typeof explicit === 'bigint' && typeof shorthand === 'number') return BigInt(shorthand) === explicit;
  return shorthand === explicit;
}

/** Shorthands folded into a copy of the explicit arguments; a shorthand that contradicts one is a ConfigError. */
function withShorthands(where: string, o: Record<string, unknown>, table: Record<string, Shorthand>): FieldTable {
  const args = checkArguments(where, o.arguments);
  for (const [key, { argument, check }] of Object.entries(table)) {
    if (o[key] === undefined) continue;
    const value = check(`${where}.${key}`, o[key]);
    if (args[argument] !== undefined && !sameValue(value, args[argument])) {
      throw new ConfigError(
        `${where}.${key}`,
        `contradicts arguments['${argument}'] (${String(value)} vs ${String(args[argument])}): give one of them`,
      );
    }
    args[argument] = value;
  }
  return args;
}

/** Queue types that live on several nodes: RabbitMQ refuses them (406) unless durable, non-exclusive, non-auto-delete. */
function checkReplicatedQueue(where: string, declaration: QueueDeclaration): void {
  const type = declaration.arguments['x-queue-type'];
  if (type !== 'quorum' && type !== 'stream') return;
  if (!declaration.durable) {
    throw new ConfigError(`${where}.durable`, `a ${type} queue must be durable (set durable: true)`);
  }
  if (declaration.exclusive) throw new ConfigError(`${where}.exclusive`, `a ${type} queue cannot be exclusive`);
  if (declaration.autoDelete) throw new ConfigError(`${where}.autoDelete`, `a ${type} queue cannot be auto-delete`);
}

/**
 * A queue's settings checked and turned into `queue.declare` fields. `where` names the queue in errors
 * (`queue 'orders'` → field `queue 'orders'.typ`); `defaults` fills the unset flags.
 */
export function resolveQueueSettings(
  where: string,
  settings: QueueSettings,
  defaults: Pick<QueueDeclaration, 'durable' | 'exclusive' | 'autoDelete'>,
): QueueDeclaration {
  const o = checkOptionsObject(where, settings);
  checkKnownKeys(where, o, QUEUE_SETTING_KEYS, 'queue');
  const declaration = queueDeclaration(where, o, defaults);
  checkReplicatedQueue(where, declaration);
  return declaration;
}

function queueDeclaration(
  where: string,
  o: Record<string, unknown>,
  defaults: Pick<QueueDeclaration, 'durable' | 'exclusive' | 'autoDelete'>,
): QueueDeclaration {
  return {
    durable: flag(where, o, 'durable', defaults.durable),
    exclusive: flag(where, o, 'exclusive', defaults.exclusive),
    autoDelete: flag(where, o, 'autoDelete', defaults.autoDelete),
    arguments: withShorthands(where, o, QUEUE_SHORTHANDS),
  };
}

/** An exchange's settings checked and turned into `exchange.declare` fields (durable by default). */
export function resolveExchangeSettings(where: string, settings: ExchangeSettings): ExchangeDeclaration {
  const o = checkOptionsObject(where, settings);
  checkKnownKeys(where, o, EXCHANGE_SETTING_KEYS, 'exchange');
  return exchangeDeclaration(where, o);
}

function exchangeDeclaration(where: string, o: Record<string, unknown>): ExchangeDeclaration {
  return {
    durable: flag(where, o, 'durable', true),
    autoDelete: flag(where, o, 'autoDelete', false),
    internal: flag(where, o, 'internal', false),
    arguments: withShorthands(where, o, EXCHANGE_SHORTHANDS),
  };
}

/** The call options (passive, noWait, timeout), checked. */
function resolveCall(where: string, o: Record<string, unknown>): ResolvedDeclareCall {
  const call: ResolvedDeclareCall = {
    passive: flag(where, o, 'passive', false),
    noWait: flag(where, o, 'noWait', false),
  };
  if (o.timeout !== undefined) {
    const timeout = o.timeout;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
      const shown = typeof timeout === 'number' ? String(timeout) : `a ${typeof timeout}`;
      throw new ConfigError(`${where}.timeout`, `must be a number of milliseconds, 0 or more, got ${shown}`);
    }
    call.timeout = timeout;
  }
  return call;
}

/** `Channel.queueDeclare`'s options checked: named queues are durable by default, server-named ones not. */
export function resolveQueueOptions(queue: string, options: QueueOptions): QueueDeclaration & ResolvedDeclareCall {
  const where = describeQueue(queue);
  const o = checkOptionsObject(where, options);
  checkKnownKeys(where, o, [...QUEUE_SETTING_KEYS, ...CALL_KEYS], 'queue');
  const call = resolveCall(where, o);
  const declaration = queueDeclaration(where, o, { durable: queue !== '', exclusive: false, autoDelete: false });
  // A passive declare only checks that the queue exists: the broker ignores the flags.
  if (!call.passive) checkReplicatedQueue(where, declaration);
  return { ...declaration, ...call };
}

/**
 * An exchange type: any non-empty string, plugins add types (`x-delayed-message`...). RabbitMQ answers an unknown
 * type with a connection error, so at least a missing one is caught here. A passive declare ignores the type.
 */
export function checkExchangeType(where: string, type: unknown, passive = false): string {
  if (typeof type !== 'string') throw new ConfigError(`${where}.type`, `must be a string, got a ${typeof type}`);
  if (type === '' && !passive) {
    throw new ConfigError(`${where}.type`, "must not be empty ('direct', 'topic', 'fanout', 'headers' or a plugin's)");
  }
  return type;
}

/** `Channel.exchangeDeclare`'s type and options checked. */
export function resolveExchangeOptions(
  exchange: string,
  type: string,
  options: ExchangeOptions,
): ExchangeDeclaration & ResolvedDeclareCall {
  const where = describeExchange(exchange);
  const o = checkOptionsObject(where, options);
  checkKnownKeys(where, o, [...EXCHANGE_SETTING_KEYS, ...CALL_KEYS], 'exchange');
  const call = resolveCall(where, o);
  checkExchangeType(where, type, call.passive);
  return { ...exchangeDeclaration(where, o), ...call };
}
