/**
 * Connection URL parsing. URLs follow RabbitMQ's URI spec (https://www.rabbitmq.com/docs/uri-spec) with pika's query
 * options:
 *
 *     amqp[s]://[username[:password]@]host[:port][,host[:port]...][/vhost][?option=value&...]
 *
 * - Only `amqp:` and `amqps:` schemes. Username, password, host and vhost are percent-decoded.
 * - Defaults: host 127.0.0.1, port 5672 (5671 for amqps), username and password `guest`, vhost `/`.
 * - The vhost is the single path segment: an empty path or `/` means vhost `/`, `/%2F` means `/`, `/foo` means `foo`;
 *   a second unescaped `/` is an error (encode it as `%2F`).
 * - Each host is read by the WHATWG `URL` parser (as the host of an `amqp:` URL): a name, or an IPv6 address in
 *   brackets, `amqp://[::1]:5672`, kept as written (an RFC 6874 zone, `[fe80::1%25eth0]`, is kept too). A character a
 *   host cannot hold (a space, `|`, `\`, `<`...) must be percent-encoded.
 * - The host part may be a comma-separated list, `amqp://u:p@h1:5701,h2:5702/vh?...`: one endpoint per host, in order,
 *   each with the URL's credentials, vhost and query options (an empty entry in the list is an error). `URL` cannot
 *   read a list, so the list is split first and each host parsed on its own.
 * - Query options use pika's snake_case names (see `QUERY_OPTIONS` below); durations are in seconds (fractions allowed).
 *   `ca`, `cert` and `key` are file paths, read when the URL is parsed. TLS options (`ca`, `cert`, `key`,
 *   `servername`, `verify`) belong to their own URL's endpoint and need an `amqps:` URL.
 *
 * How URLs and the options object combine, and the defaults of everything else: `resolve-options.ts`. How values are
 * validated: `option-checks.ts`. Passwords never leak (endpoints hide them, errors never contain them): `redact.ts`.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';
import {
  checkMechanisms,
  checkString,
  MAX_SHORTSTR,
  NUMBER_RULES,
  parseBoolean,
  parseNumber,
  type NumberField,
} from './option-checks';
import type { ConnectionOptionsInput, Endpoint, TlsOptions } from './options';
import { AMQP_PORT } from './protocol/spec.generated';
import { makeEndpoint } from './redact';

/** The redaction of URLs and endpoints (`redact.ts`), re-exported here where callers have always found it. */
export { describeEndpoint, redactUrl } from './redact';
/**
 * The resolution of options (`resolve-options.ts`), re-exported here where callers have always found it. (That module
 * imports this one; neither reads the other while loading, so the cycle is harmless.)
 */
export { resolveConnectionOptions } from './resolve-options';

/**
 * What a URL leaves out means this (RabbitMQ's own defaults; 127.0.0.1 rather than `localhost` to avoid an IPv6
 * surprise). The options object without a URL gets the same.
 */
export const ENDPOINT_DEFAULTS = {
  host: '127.0.0.1',
  port: AMQP_PORT,
  /** IANA's port of AMQP over TLS (the spec names only the plain one). */
  tlsPort: 5671,
  username: 'guest',
  password: 'guest',
  vhost: '/',
} as const;

/** The port of a protocol when none is given: 5672 for amqp, 5671 for amqps. */
export function defaultPort(protocol: 'amqp' | 'amqps'): number {
  return protocol === 'amqps' ? ENDPOINT_DEFAULTS.tlsPort : ENDPOINT_DEFAULTS.port;
}

/** One endpoint of a URL, with whether its port was explicit. */
export interface ParsedEndpoint {
  endpoint: Endpoint;
  /** Whether the URL named a port (a `protocol` override then keeps it instead of the new default). */
  explicitPort: boolean;
}

/** A parsed URL: its endpoints and its connection-level query options. */
export interface ParsedUrl {
  /** One per host of the URL's comma-separated host list, in order. */
  endpoints: ParsedEndpoint[];
  /** Validated, camelCase, no defaults applied. */
  query: Partial<ConnectionOptionsInput>;
}

// ---------------------------------------------------------------------------------------------------------------
// Query options.

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

// ---------------------------------------------------------------------------------------------------------------
// Hosts.

/** One host of a URL's host list. */
interface HostPort {
  host: string;
  port: number;
  explicitPort: boolean;
}

/**
 * An RFC 6874 zone after a bracketed IPv6 address (`[fe80::1%25eth0]`: unreserved or percent-encoded characters), which
 * WHATWG `URL` does not know.
 */
const IPV6_ZONE = /^(\[[^\]%]*)%25((?:[\w.~-]|%[\dA-Fa-f]{2})+)(\].*)$/s;

/**
 * Whether `s` holds a space or a control character, which `URL` would silently drop (tabs and newlines anywhere, the
 * others at either end) where it can only be a mistake in a host name.
 */
function hasBlankOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) <= 0x20) return true;
  return false;
}

/** Not echoed: with a forgotten '@' (`amqp://user:secret`) the "port" is the password. */
const PORT_RANGE = 'the URL port must be an integer from 1 to 65535';

/**
 * `host`, `host:port`, `[v6]` or `[v6]:port`, read by WHATWG `URL` as the host of an `amqp:` URL; an empty host means
 * the default one. A name is percent-decoded; an IPv6 address is kept as written (`URL` would rewrite
 * `::ffff:127.0.0.1` as `::ffff:7f00:1`), with its zone if it has one.
 */
function parseHostPort(entry: string, protocol: 'amqp' | 'amqps'): HostPort {
  // `URL` refuses a port without a host (`amqp://:5673`): the empty host is the default one anyway.
  const text = entry === '' || entry.startsWith(':') ? ENDPOINT_DEFAULTS.host + entry : entry;
  const zoned = IPV6_ZONE.exec(text);
  const unzoned = zoned === null ? text : `${zoned[1]}${zoned[3]}`;
  const url = readHost(protocol, unzoned);
  if (url === null) throw hostPortError(unzoned, protocol);
  let host: string;
  if (url.hostname.startsWith('[')) {
    host = unzoned.slice(1, unzoned.indexOf(']'));
    if (zoned !== null) host += `%${decode('host', zoned[2])}`;
  } else {
    host = decode('host', url.hostname);
  }
  if (url.port === '0') throw new ConfigError('port', PORT_RANGE);
  const explicitPort = url.port !== '';
  return { host, port: explicitPort ? Number(url.port) : defaultPort(protocol), explicitPort };
}

/** `URL`'s reading of `protocol://hostPort`, or null where it refuses it (or would drop part of it). */
function readHost(protocol: 'amqp' | 'amqps', hostPort: string): URL | null {
  if (hasBlankOrControl(hostPort)) return null;
  try {
    return new URL(`${protocol}://${hostPort}`);
  } catch {
    return null;
  }
}

/** Which half of `host[:port]` `URL` refused (it only says "invalid"), and why. */
function hostPortError(text: string, protocol: 'amqp' | 'amqps'): ConfigError {
  const bracketed = text.startsWith('[');
  const close = bracketed ? text.indexOf(']') : -1;
  if (bracketed && close < 0) return new ConfigError('host', "IPv6 address without its closing ']'");
  const colon = text.indexOf(':', close + 1);
  const host = colon < 0 ? text : text.slice(0, colon);
  const url = readHost(protocol, host);
  if (url === null) {
    if (!bracketed) return new ConfigError('host', 'not a valid host name (percent-encode what a host cannot hold)');
    if (host.length > close + 1) return new ConfigError('host', "unexpected text after the IPv6 address's ']'");
    return new ConfigError('host', 'invalid IPv6 address in brackets');
  }
  decode('host', url.hostname); // a bad escape in the host is reported as such, port or not
  if (text.slice(colon + 1).includes(':')) {
    return new ConfigError('port', 'IPv6 addresses must be in brackets, e.g. amqp://[::1]:5672');
  }
  return new ConfigError('port', PORT_RANGE);
}

/** The authority's host part: one host, or a comma-separated list (`h1:5701,h2:5702`, IPv6 in brackets). */
function parseHostList(hostList: string, protocol: 'amqp' | 'amqps'): HostPort[] {
  const entries = hostList.split(',');
  if (entries.length > 1 && entries.some((entry) => entry === '')) {
    throw new ConfigError('host', 'empty host in the comma-separated host list');
  }
  return entries.map((entry) => parseHostPort(entry, protocol));
}

// ---------------------------------------------------------------------------------------------------------------
// The whole URL.

/**
 * @internal Parses one URL into its endpoints (with whether each port was explicit) and its query options. Throws
 * `ConfigError` naming the offending field; the message never contains the password.
 */
export function parseUrl(url: string): ParsedUrl {
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
