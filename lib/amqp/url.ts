/**
 * Connection URL parsing and option resolution.
 *
 * URLs follow RabbitMQ's URI spec (https://www.rabbitmq.com/docs/uri-spec) with pika's query options:
 *
 *     amqp[s]://[username[:password]@]host[:port][/vhost][?option=value&...]
 *
 * - Only `amqp:` and `amqps:` schemes. Username, password, host and vhost are percent-decoded.
 * - Defaults: host 127.0.0.1, port 5672 (5671 for amqps), username and password `guest`, vhost `/`.
 * - The vhost is the single path segment: an empty path or `/` means vhost `/`, `/%2F` means `/`, `/foo` means `foo`;
 *   a second unescaped `/` is an error (encode it as `%2F`).
 * - IPv6 hosts go in brackets: `amqp://[::1]:5672`.
 * - The host part may be a comma-separated list, `amqp://u:p@h1:5701,h2:5702/vh?...`: one endpoint per host, in order,
 *   each with the URL's credentials, vhost and query options (an empty entry in the list is an error).
 * - Query options use pika's snake_case names (see `QUERY_OPTIONS` below); durations are in seconds (fractions allowed).
 *   `ca`, `cert` and `key` are file paths, read when the options are resolved. TLS options (`ca`, `cert`, `key`,
 *   `servername`, `verify`) belong to their own URL's endpoint and need an `amqps:` URL.
 * - TLS key material is checked when the options are resolved (`tls-material.ts`): a key that does not decrypt with
 *   its passphrase, a PEM that does not parse, or a certificate that does not match its key is a `ConfigError`
 *   (`tls.key`, `tls.passphrase`, `tls.cert`, `tls.ca`), never a connect error retried forever.
 * - With several URLs, each endpoint keeps its own host, port, credentials, vhost and TLS options, but the
 *   connection-level query options (heartbeat, frame_max, timeouts, ...) are taken from the FIRST URL only;
 *   those of the other URLs are validated and then ignored.
 * - Object fields override what the URLs say: `host`, `port`, `username`, `password`, `vhost` and `protocol` replace
 *   every endpoint's value, `tls` fields are merged over every amqps endpoint's TLS options, and connection-level
 *   fields (`heartbeat`, `clientProperties`, ...) replace the first URL's query options as a whole.
 *
 * Passwords never leak: resolved endpoints keep `password` as a non-enumerable property (invisible to
 * `JSON.stringify`, `Object.keys` and spreads, so copy it explicitly if you must copy an endpoint), and
 * `util.inspect()` shows `password: '***'` (redaction: `redact.ts`). No error message ever contains a password.
 */
import { readFileSync } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { isIPv6 } from 'node:net';
import { inspect } from 'node:util';
import { ConfigError } from './errors';
import { describeEndpoint, redactEndpoint, redactTls, redactUrl } from './redact';
import { checkTlsMaterial } from './tls-material';
import {
  DEFAULTS,
  type ConnectionOptionsInput,
  type Endpoint,
  type ResolvedConnectionOptions,
  type SaslMechanism,
  type TlsOptions,
} from './options';

/** The redaction lives in `redact.ts`; re-exported here, where callers have always found it. */
export { describeEndpoint, redactUrl };

/** Endpoint defaults (RabbitMQ's own defaults; 127.0.0.1 rather than `localhost` to avoid an IPv6 surprise). */
export const ENDPOINT_DEFAULTS = {
  host: '127.0.0.1',
  port: 5672,
  tlsPort: 5671,
  username: 'guest',
  password: 'guest',
  vhost: '/',
} as const;

/** SASL mechanisms offered when none are configured. EXTERNAL is used only when asked for explicitly. */
export const DEFAULT_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'AMQPLAIN'];

const SASL_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'AMQPLAIN', 'EXTERNAL'];

/** Largest delay Node's timers honour (2^31-1 ms); longer ones fire after 1 ms. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** Longest AMQP short string (locale, vhost), bytes. */
const MAX_SHORTSTR = 255;

type NumberField =
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

interface NumberRule {
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

const NUMBER_RULES: Record<NumberField, NumberRule> = {
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

function describeRule(rule: NumberRule): string {
  if (rule.integer) return `an integer from ${rule.min} to ${rule.max}`;
  const low = rule.minExclusive ? `greater than ${rule.min}` : `from ${rule.min}`;
  return `a number of seconds ${low} and at most ${rule.max}`;
}

/** Validates a number (object input or an already-parsed query value). `shown` is how the value is echoed. */
function checkNumber(field: string, value: unknown, rule: NumberRule, shown?: string): number {
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
function parseNumber(field: string, raw: string, rule: NumberRule): number {
  const format = rule.integer ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)$/;
  if (!format.test(raw)) throw new ConfigError(field, `must be ${describeRule(rule)}, got '${raw}'`);
  return checkNumber(field, Number(raw), rule, `'${raw}'`);
}

function parseBoolean(field: string, raw: string, extra: Record<string, boolean> = {}): boolean {
  const words: Record<string, boolean> = { true: true, '1': true, false: false, '0': false, ...extra };
  const value = words[raw.toLowerCase()];
  if (value === undefined) {
    throw new ConfigError(field, `must be one of ${Object.keys(words).join(', ')}, got '${raw}'`);
  }
  return value;
}

function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be a boolean, got a ${typeof value}`);
  return value;
}

/** Never echoes the value: string fields may be secrets. */
function checkString(field: string, value: unknown, opts: { nonEmpty?: boolean; maxBytes?: number } = {}): string {
  if (typeof value !== 'string') throw new ConfigError(field, `must be a string, got a ${typeof value}`);
  if (opts.nonEmpty && value === '') throw new ConfigError(field, 'must not be empty');
  if (opts.maxBytes !== undefined && Buffer.byteLength(value) > opts.maxBytes) {
    throw new ConfigError(field, `must be at most ${opts.maxBytes} bytes (UTF-8)`);
  }
  return value;
}

function checkMechanisms(field: string, value: unknown): SaslMechanism[] {
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
  return checkNumber(field, value, { integer: true, min: 1, max: 65535 });
}

function checkProtocol(field: string, value: unknown): 'amqp' | 'amqps' {
  if (value !== 'amqp' && value !== 'amqps') {
    const shown = typeof value === 'string' ? `'${value}'` : `a ${typeof value}`;
    throw new ConfigError(field, `must be 'amqp' or 'amqps', got ${shown}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// Endpoints: password hidden from enumeration, JSON and util.inspect.

function hidden(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: false, writable: true, configurable: true });
}

function inspectEndpoint(this: Endpoint): Record<string, unknown> {
  return redactEndpoint(this);
}

/** A TLS options copy whose JSON form hides the private key and passphrase (spreads still carry them). */
function makeTls(tls: TlsOptions): TlsOptions {
  const copy: TlsOptions = {};
  for (const key of ['ca', 'cert', 'key', 'passphrase', 'servername', 'verify'] as const) {
    if (tls[key] !== undefined) Object.assign(copy, { [key]: tls[key] });
  }
  hidden(copy, 'toJSON', () => redactTls(copy));
  hidden(copy, inspect.custom, () => redactTls(copy));
  return copy;
}

function makeEndpoint(fields: Omit<Endpoint, 'password'>, password: string): Endpoint {
  const endpoint: Omit<Endpoint, 'password'> = {
    protocol: fields.protocol,
    host: fields.host,
    port: fields.port,
    username: fields.username,
    vhost: fields.vhost,
  };
  if (fields.tls !== undefined) endpoint.tls = makeTls(fields.tls);
  hidden(endpoint, 'password', password);
  hidden(endpoint, inspect.custom, inspectEndpoint);
  return endpoint as Endpoint;
}

// ---------------------------------------------------------------------------------------------------------------
// URL parsing.

interface ParsedQuery {
  options: Partial<ConnectionOptionsInput>;
  tls: TlsOptions;
  /** Names of the TLS options given, for the "needs amqps" error. */
  tlsFields: string[];
}

function readFile(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError(field, `cannot read file '${path}' (${code})`);
  }
}

type QueryHandler = (raw: string, field: string, into: ParsedQuery) => void;

const numberOption =
  (key: NumberField): QueryHandler =>
  (raw, field, into) => {
    into.options[key] = parseNumber(field, raw, NUMBER_RULES[key]);
  };

const tlsOption =
  (apply: (raw: string, field: string, tls: TlsOptions) => void): QueryHandler =>
  (raw, field, into) => {
    apply(raw, field, into.tls);
    into.tlsFields.push(field);
  };

/** Query options (pika's names), by name. */
const QUERY_OPTIONS: Record<string, QueryHandler> = {
  heartbeat: numberOption('heartbeat'),
  frame_max: numberOption('frameMax'),
  channel_max: numberOption('channelMax'),
  connection_attempts: numberOption('connectionAttempts'),
  retry_delay: numberOption('retryDelay'),
  connection_timeout: numberOption('connectionTimeout'),
  handshake_timeout: numberOption('handshakeTimeout'),
  blocked_connection_timeout: numberOption('blockedConnectionTimeout'),
  operation_timeout: numberOption('operationTimeout'),
  max_message_size: numberOption('maxMessageSize'),
  confirm_timeout_ms: numberOption('confirmTimeoutMs'),
  locale: (raw, field, into) => {
    into.options.locale = checkString(field, raw, { nonEmpty: true, maxBytes: MAX_SHORTSTR });
  },
  client_properties: (raw, field, into) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ConfigError(field, 'must be a JSON object (invalid JSON)');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(field, 'must be a JSON object');
    }
    into.options.clientProperties = parsed as Record<string, unknown>;
  },
  connection_name: (raw, field, into) => {
    into.options.connectionName = checkString(field, raw, { nonEmpty: true });
  },
  no_delay: (raw, field, into) => {
    into.options.noDelay = parseBoolean(field, raw);
  },
  keep_alive: (raw, field, into) => {
    into.options.keepAlive = parseBoolean(field, raw);
  },
  shuffle: (raw, field, into) => {
    into.options.shuffleUrls = parseBoolean(field, raw);
  },
  auth_mechanism: (raw, field, into) => {
    into.options.mechanisms = checkMechanisms(
      field,
      raw.split(',').map((m) => m.trim().toUpperCase()),
    );
  },
  ca: tlsOption((raw, field, tls) => {
    tls.ca = readFile(field, raw);
  }),
  cert: tlsOption((raw, field, tls) => {
    tls.cert = readFile(field, raw);
  }),
  key: tlsOption((raw, field, tls) => {
    tls.key = readFile(field, raw);
  }),
  servername: tlsOption((raw, field, tls) => {
    tls.servername = checkString(field, raw, { nonEmpty: true });
  }),
  verify: tlsOption((raw, field, tls) => {
    tls.verify = parseBoolean(field, raw, { verify_peer: true, verify_none: false });
  }),
};

function decode(field: string, raw: string, plusIsSpace = false): string {
  try {
    return decodeURIComponent(plusIsSpace ? raw.replace(/\+/g, ' ') : raw);
  } catch {
    throw new ConfigError(field, 'invalid percent-encoding');
  }
}

function parseQuery(query: string): ParsedQuery {
  const into: ParsedQuery = { options: {}, tls: {}, tlsFields: [] };
  const seen = new Set<string>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decode('url', eq < 0 ? pair : pair.slice(0, eq), true);
    const handler = Object.hasOwn(QUERY_OPTIONS, name) ? QUERY_OPTIONS[name] : undefined;
    if (handler === undefined) {
      const known = `(known: ${Object.keys(QUERY_OPTIONS).join(', ')})`;
      // Only a plain name is echoed: anything else may be part of a password with a raw '?' in it.
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new ConfigError('url', `unknown URL query option ${known}`);
      throw new ConfigError(name, `unknown URL query option '${name}' ${known}`);
    }
    if (eq < 0) throw new ConfigError(name, 'query option needs a value');
    if (seen.has(name)) throw new ConfigError(name, 'query option given more than once');
    seen.add(name);
    handler(decode(name, pair.slice(eq + 1), true), name, into);
  }
  return into;
}

/** One host of a URL's host list. */
interface HostPort {
  host: string;
  port: number;
  /** Whether the URL named a port (a `protocol` override then keeps it instead of the new default). */
  explicitPort: boolean;
}

/** One endpoint of a URL, with whether its port was explicit. */
interface ParsedEndpoint {
  endpoint: Endpoint;
  explicitPort: boolean;
}

interface ParsedUrl {
  /** One per host of the URL's comma-separated host list, in order. */
  endpoints: ParsedEndpoint[];
  query: Partial<ConnectionOptionsInput>;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; an empty host means the default one. */
function parseHostPort(hostPort: string, protocol: 'amqp' | 'amqps'): HostPort {
  let hostRaw: string;
  let portRaw: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw new ConfigError('host', "IPv6 address without its closing ']'");
    hostRaw = hostPort.slice(1, close);
    const tail = hostPort.slice(close + 1);
    if (tail !== '' && !tail.startsWith(':'))
      throw new ConfigError('host', "unexpected text after the IPv6 address's ']'");
    if (tail !== '') portRaw = tail.slice(1);
    if (!isIPv6(decode('host', hostRaw))) throw new ConfigError('host', 'invalid IPv6 address in brackets');
  } else {
    const colon = hostPort.indexOf(':');
    hostRaw = colon < 0 ? hostPort : hostPort.slice(0, colon);
    if (colon >= 0) portRaw = hostPort.slice(colon + 1);
  }
  const host = hostRaw === '' ? ENDPOINT_DEFAULTS.host : decode('host', hostRaw);
  const explicitPort = portRaw !== undefined && portRaw !== '';
  let port = defaultPort(protocol);
  if (explicitPort) {
    const raw = portRaw ?? '';
    if (raw.includes(':')) throw new ConfigError('port', 'IPv6 addresses must be in brackets, e.g. amqp://[::1]:5672');
    // Not echoed: with a forgotten '@' (`amqp://user:secret`) the "port" is the password.
    port = Number(raw);
    if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
      throw new ConfigError('port', 'the URL port must be an integer from 1 to 65535');
    }
  }
  return { host, port, explicitPort };
}

/** The authority's host part: one host, or a comma-separated list (`h1:5701,h2:5702`, IPv6 in brackets). */
function parseHostList(hostList: string, protocol: 'amqp' | 'amqps'): HostPort[] {
  const entries = hostList.split(',');
  if (entries.length > 1 && entries.some((entry) => entry === '')) {
    throw new ConfigError('host', 'empty host in the comma-separated host list');
  }
  return entries.map((entry) => parseHostPort(entry, protocol));
}

function parseUrl(url: string): ParsedUrl {
  if (typeof url !== 'string') throw new ConfigError('url', `must be a string, got a ${typeof url}`);
  const text = url.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
  if (scheme === null) throw new ConfigError('url', 'not a URL: expected amqp://host or amqps://host');
  const protocol = (scheme[1] ?? '').toLowerCase();
  if (protocol !== 'amqp' && protocol !== 'amqps') {
    throw new ConfigError('url', `unsupported scheme '${scheme[1]}:' (only amqp: and amqps: are supported)`);
  }
  const afterScheme = text.slice(scheme[0].length);
  if (!afterScheme.startsWith('//')) throw new ConfigError('url', `expected '${protocol}://' at the start`);
  const rest = afterScheme.slice(2);
  if (rest.includes('#')) {
    throw new ConfigError('url', "unexpected '#': fragments are not allowed (percent-encode a '#' as %23)");
  }

  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const afterAuthority = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  const at = authority.lastIndexOf('@');
  if (at < 0 && afterAuthority.includes('@')) {
    // Most likely a password with an unescaped '/' or '?': refuse rather than misread (and echo) it.
    throw new ConfigError(
      'url',
      "unexpected '@' after the host: percent-encode '/', '?', '#' and '@' in user names, passwords, " +
        'vhosts and query values (%2F, %3F, %23, %40)',
    );
  }

  // userinfo
  let username: string = ENDPOINT_DEFAULTS.username;
  let password: string = ENDPOINT_DEFAULTS.password;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    username = decode('username', colon < 0 ? userinfo : userinfo.slice(0, colon));
    if (colon >= 0) password = decode('password', userinfo.slice(colon + 1));
  }

  const hosts = parseHostList(authority.slice(at + 1), protocol);

  // vhost: the single path segment
  const queryStart = afterAuthority.indexOf('?');
  const path = queryStart < 0 ? afterAuthority : afterAuthority.slice(0, queryStart);
  let vhost: string = ENDPOINT_DEFAULTS.vhost;
  if (path.length > 1) {
    const segment = path.slice(1);
    if (segment.includes('/')) {
      throw new ConfigError('vhost', "the URL path must be a single segment: encode a '/' in the vhost name as %2F");
    }
    vhost = decode('vhost', segment);
    checkString('vhost', vhost, { maxBytes: MAX_SHORTSTR });
  }

  const query = parseQuery(queryStart < 0 ? '' : afterAuthority.slice(queryStart + 1));
  let tls: TlsOptions | undefined;
  if (protocol === 'amqps') {
    tls = { verify: true, ...query.tls };
  } else if (query.tlsFields.length > 0) {
    const field = query.tlsFields[0] ?? 'tls';
    throw new ConfigError(field, "TLS options need an amqps: URL (this one is 'amqp:')");
  }

  const endpoints = hosts.map(({ host, port, explicitPort }) => ({
    endpoint: makeEndpoint({ protocol, host, port, username, vhost, tls }, password),
    explicitPort,
  }));
  return { endpoints, query: query.options };
}

/**
 * Parses one `amqp:`/`amqps:` URL into its endpoint (with its TLS options; `ca`/`cert`/`key` files are read now)
 * and its connection-level query options (camelCase fields, validated, no defaults applied). A URL with a host list
 * (`amqp://u:p@h1:5701,h2:5702/vh`) gives one endpoint per host in `endpoints`; `endpoint` is the first of them.
 * Throws `ConfigError` naming the offending field; the message never contains the password.
 */
export function parseAmqpUrl(url: string): {
  endpoint: Endpoint;
  endpoints: Endpoint[];
  query: Partial<ConnectionOptionsInput>;
} {
  const { endpoints, query } = parseUrl(url);
  const all = endpoints.map((p) => p.endpoint);
  return { endpoint: all[0] as Endpoint, endpoints: all, query };
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution.

/** Validates the connection-level fields of object input (camelCase names in messages). */
function checkConnectionFields(input: ConnectionOptionsInput): Partial<ConnectionOptionsInput> {
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

/** The endpoint fields of the options object, checked. */
type EndpointOverrides = Pick<
  ConnectionOptionsInput,
  'protocol' | 'host' | 'port' | 'username' | 'password' | 'vhost' | 'tls'
>;

function checkEndpointFields(input: ConnectionOptionsInput): EndpointOverrides {
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

function defaultPort(protocol: 'amqp' | 'amqps'): number {
  return protocol === 'amqps' ? ENDPOINT_DEFAULTS.tlsPort : ENDPOINT_DEFAULTS.port;
}

function overrideEndpoint(parsed: ParsedEndpoint, o: EndpointOverrides, where: string): Endpoint {
  const e = parsed.endpoint;
  const protocol = o.protocol ?? e.protocol;
  if (protocol === 'amqp' && e.tls !== undefined && Object.keys(e.tls).some((k) => k !== 'verify')) {
    throw new ConfigError('protocol', `'amqp' would drop the TLS options of an amqps: URL${where}`);
  }
  return makeEndpoint(
    {
      protocol,
      host: o.host ?? e.host,
      port: o.port ?? (parsed.explicitPort ? e.port : defaultPort(protocol)),
      username: o.username ?? e.username,
      vhost: o.vhost ?? e.vhost,
      tls: protocol === 'amqps' ? { verify: true, ...e.tls, ...o.tls } : undefined,
    },
    o.password ?? e.password,
  );
}

/** Re-throws a URL's ConfigError with the URL's index, when there are several. */
function parseListedUrl(url: string, index: number, count: number): ParsedUrl {
  try {
    return parseUrl(url);
  } catch (err) {
    if (count === 1 || !(err instanceof ConfigError)) throw err;
    const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    throw new ConfigError(err.field, `${message} (in url[${index}])`);
  }
}

/** Same key material (same values, as URL files and object fields are shared between the endpoints they feed). */
function sameMaterial(a: TlsOptions, b: TlsOptions): boolean {
  return a.ca === b.ca && a.cert === b.cert && a.key === b.key && a.passphrase === b.passphrase;
}

/**
 * Validates each amqps endpoint's final TLS material (URL files and object fields merged), once per distinct
 * material (a URL's host list shares one). With several endpoints the error says which one.
 */
function checkEndpointsTls(endpoints: Endpoint[]): void {
  const checked: TlsOptions[] = [];
  for (const e of endpoints) {
    const tls = e.tls;
    if (tls === undefined || checked.some((c) => sameMaterial(c, tls))) continue;
    try {
      checkTlsMaterial(tls);
    } catch (err) {
      if (endpoints.length === 1 || !(err instanceof ConfigError)) throw err;
      throw new ConfigError(err.field, `${err.message.slice(err.field.length + 2)} (for ${describeEndpoint(e)})`);
    }
    checked.push(tls);
  }
}

const toMs = (s: number): number => Math.round(s * 1000);

/**
 * Turns a URL, a list of URLs or an options object into fully validated options with every default applied.
 * See the module comment for the URL rules and how object fields override URL values.
 * Throws `ConfigError` naming the offending field; messages never contain a password.
 */
export function resolveConnectionOptions(input: string | string[] | ConnectionOptionsInput): ResolvedConnectionOptions {
  const opts: ConnectionOptionsInput =
    typeof input === 'string' || Array.isArray(input) ? { url: input as string | string[] } : input;
  if (typeof opts !== 'object' || opts === null) {
    throw new ConfigError('url', 'expected a URL, a list of URLs or an options object');
  }

  const overrides = checkEndpointFields(opts);
  const fields = checkConnectionFields(opts);

  let urls: string[] = [];
  if (opts.url !== undefined) {
    urls = Array.isArray(opts.url) ? opts.url : [opts.url];
    if (urls.length === 0) throw new ConfigError('url', 'the URL list is empty');
  }
  const parsed = urls.map((url, i) => parseListedUrl(url, i, urls.length));

  let endpoints: Endpoint[];
  if (parsed.length > 0) {
    endpoints = parsed.flatMap((p, i) =>
      p.endpoints.map((e) => overrideEndpoint(e, overrides, parsed.length > 1 ? ` (url[${i}])` : '')),
    );
    if (overrides.tls !== undefined && !endpoints.some((e) => e.protocol === 'amqps')) {
      throw new ConfigError('tls', 'TLS options given, but no URL uses amqps:');
    }
  } else {
    const protocol = overrides.protocol ?? (overrides.tls !== undefined ? 'amqps' : 'amqp');
    if (protocol === 'amqp' && overrides.tls !== undefined) {
      throw new ConfigError('tls', "TLS options given with protocol 'amqp' (use 'amqps')");
    }
    endpoints = [
      makeEndpoint(
        {
          protocol,
          host: overrides.host ?? ENDPOINT_DEFAULTS.host,
          port: overrides.port ?? defaultPort(protocol),
          username: overrides.username ?? ENDPOINT_DEFAULTS.username,
          vhost: overrides.vhost ?? ENDPOINT_DEFAULTS.vhost,
          tls: protocol === 'amqps' ? { verify: true, ...overrides.tls } : undefined,
        },
        overrides.password ?? ENDPOINT_DEFAULTS.password,
      ),
    ];
  }

  checkEndpointsTls(endpoints);

  // Connection-level options: the first URL's query, overridden field by field by the object's.
  const o: Partial<ConnectionOptionsInput> = { ...parsed[0]?.query, ...fields };
  const channelMax = o.channelMax ?? DEFAULTS.channelMax;
  const resolved: ResolvedConnectionOptions = {
    endpoints,
    heartbeat: o.heartbeat ?? DEFAULTS.heartbeat,
    frameMax: o.frameMax ?? DEFAULTS.frameMax,
    channelMax: channelMax === 0 ? 65535 : channelMax,
    connectionAttempts: o.connectionAttempts ?? DEFAULTS.connectionAttempts,
    retryDelayMs: toMs(o.retryDelay ?? DEFAULTS.retryDelay),
    connectionTimeoutMs: Math.max(1, toMs(o.connectionTimeout ?? DEFAULTS.connectionTimeout)),
    handshakeTimeoutMs: Math.max(1, toMs(o.handshakeTimeout ?? DEFAULTS.handshakeTimeout)),
    blockedConnectionTimeoutMs: toMs(o.blockedConnectionTimeout ?? DEFAULTS.blockedConnectionTimeout),
    operationTimeoutMs: Math.max(1, toMs(o.operationTimeout ?? DEFAULTS.operationTimeout)),
    locale: o.locale ?? DEFAULTS.locale,
    clientProperties: o.clientProperties ?? {},
    noDelay: o.noDelay ?? true,
    keepAlive: o.keepAlive ?? true,
    shuffleUrls: o.shuffleUrls ?? false,
    mechanisms: o.mechanisms ?? [...DEFAULT_MECHANISMS],
    maxMessageSize: o.maxMessageSize ?? DEFAULTS.maxMessageSize,
    confirmTimeoutMs: o.confirmTimeoutMs ?? DEFAULTS.confirmTimeoutMs,
  };
  if (o.connectionName !== undefined) resolved.connectionName = o.connectionName;
  if (o.credentials !== undefined) resolved.credentials = o.credentials;
  return resolved;
}
