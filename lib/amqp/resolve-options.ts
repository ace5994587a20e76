/**
 * Connection option resolution: a URL, a list of URLs or an options object becomes `ResolvedConnectionOptions`, every
 * value validated (`option-checks.ts`) and every default applied (`options.ts` DEFAULTS, `url.ts` ENDPOINT_DEFAULTS).
 *
 * - Each URL gives its endpoints (`url.ts`: one per host of its host list), each with its own host, port,
 *   credentials, vhost and TLS options. The connection-level query options (heartbeat, frame_max, timeouts, ...) are
 *   taken from the FIRST URL only; those of the other URLs are validated and then ignored.
 * - Object fields override what the URLs say: `host`, `port`, `username`, `password`, `vhost` and `protocol` replace
 *   every endpoint's value, `tls` fields are merged over every amqps endpoint's TLS options, and connection-level
 *   fields (`heartbeat`, `clientProperties`, ...) replace the first URL's query options field by field.
 * - TLS key material is checked here (`tls-material.ts`): a key that does not decrypt with its passphrase, a PEM that
 *   does not parse, or a certificate that does not match its key is a `ConfigError` (`tls.key`, `tls.passphrase`,
 *   `tls.cert`, `tls.ca`), never a connect error retried forever.
 *
 * Errors are `ConfigError`s naming the offending field; no message contains a password.
 */
import { ConfigError } from './errors';
import { checkConnectionFields, checkEndpointFields, type EndpointOverrides } from './option-checks';
import {
  DEFAULTS,
  type ConnectionOptionsInput,
  type Endpoint,
  type ResolvedConnectionOptions,
  type SaslMechanism,
  type TlsOptions,
} from './options';
import { describeEndpoint, makeEndpoint } from './redact';
import { checkTlsMaterial } from './tls-material';
import { defaultPort, ENDPOINT_DEFAULTS, parseUrl, type ParsedEndpoint, type ParsedUrl } from './url';

/** SASL mechanisms offered when none are configured. EXTERNAL is used only when asked for explicitly. */
export const DEFAULT_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'AMQPLAIN'];

/** A URL's endpoint with the object's endpoint fields over it (`where` names the URL in errors, when several). */
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
 * See the module comment for how object fields override URL values (the URL rules: `url.ts`).
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
