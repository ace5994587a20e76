/**
 * Validation of connection options, whatever they come from: URL query values (text, snake_case names) or the
 * options object (typed values, camelCase names). Each check throws a `ConfigError` naming the field it was given and
 * never echoes a string value (it may be a secret); numbers are echoed, so a message says what was wrong.
 */
import { constants as bufferConstants } from 'node:buffer';
import { ConfigError } from './errors';
import { DEFAULTS, type ConnectionOptionsInput, type SaslMechanism, type TlsOptions } from './options';

/** The SASL mechanisms the client speaks (options.ts `SaslMechanism`). */
export const SASL_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'AMQPLAIN', 'EXTERNAL'];

/** Longest AMQP short string (locale, vhost), bytes. */
export const MAX_SHORTSTR = 255;

/** Largest delay Node's timers honour (2^31-1 ms); longer ones fire after 1 ms. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** The numeric connection-level options. */
export type NumberField =
  | 'heartbeat'
  | 'frameMax'
  | 'channelMax'
  | 'connectionAttempts'
  | 'retryDelay'
  | 'connectionTimeout'
  | 'handshakeTimeout'
  | 'blockedConnectionTimeout'
  | 'operationTimeout'
  | 'maxMessageSize'
  | 'confirmTimeoutMs';

/** The range a numeric option must fall in. */
export interface NumberRule {
  integer: boolean;
  min: number;
  /** `min` itself is not allowed (durations that must be positive). */
  minExclusive?: boolean;
  max: number;
}

const seconds = (min: number, minExclusive = false): NumberRule => ({
  integer: false,
  min,
  minExclusive,
  max: MAX_TIMER_SECONDS,
});

/** The rule of each numeric option; durations are in seconds (fractions allowed) unless named `...Ms`. */
export const NUMBER_RULES: Readonly<Record<NumberField, NumberRule>> = {
  heartbeat: { integer: true, min: 0, max: 65535 },
  frameMax: { integer: true, min: DEFAULTS.minFrameMax, max: DEFAULTS.maxFrameMax },
  channelMax: { integer: true, min: 0, max: 65535 },
  connectionAttempts: { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER },
  retryDelay: seconds(0),
  connectionTimeout: seconds(0, true),
  handshakeTimeout: seconds(0, true),
  blockedConnectionTimeout: seconds(0),
  operationTimeout: seconds(0, true),
  maxMessageSize: { integer: true, min: 1, max: bufferConstants.MAX_LENGTH },
  confirmTimeoutMs: { integer: true, min: 0, max: 2 ** 31 - 1 },
};

const PORT_RULE: NumberRule = { integer: true, min: 1, max: 65535 };

function describeRule(rule: NumberRule): string {
  if (rule.integer) return `an integer from ${rule.min} to ${rule.max}`;
  const low = rule.minExclusive ? `greater than ${rule.min}` : `from ${rule.min}`;
  return `a number of seconds ${low} and at most ${rule.max}`;
}

/** Validates a number (object input or an already-parsed query value). `shown` is how the value is echoed. */
export function checkNumber(field: string, value: unknown, rule: NumberRule, shown?: string): number {
  if (typeof value !== 'number') throw new ConfigError(field, `must be ${describeRule(rule)}, got a ${typeof value}`);
  const ok =
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.minExclusive ? value > rule.min : value >= rule.min) &&
    value <= rule.max;
  if (!ok) throw new ConfigError(field, `must be ${describeRule(rule)}, got ${shown ?? String(value)}`);
  return value;
}

/** Parses a query string value: plain decimal digits only (no sign, exponent, hex or blanks). */
export function parseNumber(field: string, raw: string, rule: NumberRule): number {
  const format = rule.integer ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)$/;
  if (!format.test(raw)) throw new ConfigError(field, `must be ${describeRule(rule)}, got '${raw}'`);
  return checkNumber(field, Number(raw), rule, `'${raw}'`);
}

/** Parses a query string boolean: true/1 or false/0 (any case), plus the `extra` words. */
export function parseBoolean(field: string, raw: string, extra: Record<string, boolean> = {}): boolean {
  const words: Record<string, boolean> = { true: true, '1': true, false: false, '0': false, ...extra };
  const value = words[raw.toLowerCase()];
  if (value === undefined) {
    throw new ConfigError(field, `must be one of ${Object.keys(words).join(', ')}, got '${raw}'`);
  }
  return value;
}

/** Validates a boolean of object input. */
export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be a boolean, got a ${typeof value}`);
  return value;
}

/** Validates a string (optionally non-empty, at most `maxBytes` of UTF-8). Never echoes the value: it may be a secret. */
export function checkString(
  field: string,
  value: unknown,
  opts: { nonEmpty?: boolean; maxBytes?: number } = {},
): string {
  if (typeof value !== 'string') throw new ConfigError(field, `must be a string, got a ${typeof value}`);
  if (opts.nonEmpty && value === '') throw new ConfigError(field, 'must not be empty');
  if (opts.maxBytes !== undefined && Buffer.byteLength(value) > opts.maxBytes) {
    throw new ConfigError(field, `must be at most ${opts.maxBytes} bytes (UTF-8)`);
  }
  return value;
}

/** Validates a list of SASL mechanisms: non-empty, known names only; duplicates are dropped, the order kept. */
export function checkMechanisms(field: string, value: unknown): SaslMechanism[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(field, `must be a non-empty list of ${SASL_MECHANISMS.join(', ')}`);
  }
  const out: SaslMechanism[] = [];
  for (const item of value) {
    const mechanism = SASL_MECHANISMS.find((m) => m === item);
    if (mechanism === undefined) {
      const shown = typeof item === 'string' ? `'${item}'` : `a ${typeof item}`;
      throw new ConfigError(field, `unknown SASL mechanism ${shown} (supported: ${SASL_MECHANISMS.join(', ')})`);
    }
    if (!out.includes(mechanism)) out.push(mechanism);
  }
  return out;
}

function checkClientProperties(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new ConfigError(field, 'must be an object');
  }
  return { ...(value as Record<string, unknown>) };
}

function checkPort(field: string, value: unknown): number {
  return checkNumber(field, value, PORT_RULE);
}

function checkProtocol(field: string, value: unknown): 'amqp' | 'amqps' {
  if (value !== 'amqp' && value !== 'amqps') {
    const shown = typeof value === 'string' ? `'${value}'` : `a ${typeof value}`;
    throw new ConfigError(field, `must be 'amqp' or 'amqps', got ${shown}`);
  }
  return value;
}

function checkPem(field: string, value: unknown): string | Buffer {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  throw new ConfigError(field, `must be a string or a Buffer, got a ${typeof value}`);
}

function checkTls(value: unknown): TlsOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError('tls', 'must be an object');
  }
  const tls = value as TlsOptions;
  const out: TlsOptions = {};
  if (tls.ca !== undefined) {
    out.ca = Array.isArray(tls.ca) ? tls.ca.map((ca, i) => checkPem(`tls.ca[${i}]`, ca)) : checkPem('tls.ca', tls.ca);
  }
  if (tls.cert !== undefined) out.cert = checkPem('tls.cert', tls.cert);
  if (tls.key !== undefined) out.key = checkPem('tls.key', tls.key);
  if (tls.passphrase !== undefined) out.passphrase = checkString('tls.passphrase', tls.passphrase);
  if (tls.servername !== undefined) out.servername = checkString('tls.servername', tls.servername, { nonEmpty: true });
  if (tls.verify !== undefined) out.verify = checkBoolean('tls.verify', tls.verify);
  return out;
}

/** Validates the connection-level fields of object input (camelCase names in messages); absent ones stay absent. */
export function checkConnectionFields(input: ConnectionOptionsInput): Partial<ConnectionOptionsInput> {
  const out: Partial<ConnectionOptionsInput> = {};
  for (const key of Object.keys(NUMBER_RULES) as NumberField[]) {
    const value: unknown = input[key];
    if (value !== undefined) out[key] = checkNumber(key, value, NUMBER_RULES[key]);
  }
  if (input.locale !== undefined) {
    out.locale = checkString('locale', input.locale, { nonEmpty: true, maxBytes: MAX_SHORTSTR });
  }
  if (input.clientProperties !== undefined) {
    out.clientProperties = checkClientProperties('clientProperties', input.clientProperties);
  }
  if (input.connectionName !== undefined) {
    out.connectionName = checkString('connectionName', input.connectionName, { nonEmpty: true });
  }
  if (input.noDelay !== undefined) out.noDelay = checkBoolean('noDelay', input.noDelay);
  if (input.keepAlive !== undefined) out.keepAlive = checkBoolean('keepAlive', input.keepAlive);
  if (input.shuffleUrls !== undefined) out.shuffleUrls = checkBoolean('shuffleUrls', input.shuffleUrls);
  if (input.mechanisms !== undefined) out.mechanisms = checkMechanisms('mechanisms', input.mechanisms);
  if (input.credentials !== undefined) {
    if (typeof input.credentials !== 'function') {
      throw new ConfigError(
        'credentials',
        `must be a function returning { username, password } or { token }, got a ${typeof input.credentials}`,
      );
    }
    out.credentials = input.credentials;
  }
  return out;
}

/** The endpoint fields of the options object (they override every URL's), checked. */
export type EndpointOverrides = Pick<
  ConnectionOptionsInput,
  'protocol' | 'host' | 'port' | 'username' | 'password' | 'vhost' | 'tls'
>;

/** Validates the endpoint fields of object input; absent ones stay absent. */
export function checkEndpointFields(input: ConnectionOptionsInput): EndpointOverrides {
  const out: EndpointOverrides = {};
  if (input.protocol !== undefined) out.protocol = checkProtocol('protocol', input.protocol);
  if (input.host !== undefined) out.host = checkString('host', input.host, { nonEmpty: true });
  if (input.port !== undefined) out.port = checkPort('port', input.port);
  if (input.username !== undefined) out.username = checkString('username', input.username);
  if (input.password !== undefined) out.password = checkString('password', input.password);
  if (input.vhost !== undefined) out.vhost = checkString('vhost', input.vhost, { maxBytes: MAX_SHORTSTR });
  if (input.tls !== undefined) out.tls = checkTls(input.tls);
  return out;
}
