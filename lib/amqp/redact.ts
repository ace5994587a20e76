/**
 * The one redaction of connection secrets (passwords, TLS private keys and their passphrases), used by everything that
 * prints, logs or serialises connection details: URLs, endpoints, TLS options, sessions and the Nest providers.
 *
 * Endpoints are built here (`makeEndpoint`) so that none can leak its password: it is a non-enumerable property
 * (invisible to `JSON.stringify`, `Object.keys` and spreads, so copy it explicitly if you must copy an endpoint), and
 * `util.inspect()` shows `password: '***'`. Their TLS options serialise to JSON without the private key and passphrase.
 */
import { inspect, type InspectOptionsStylized } from 'node:util';
import type { Endpoint, TlsOptions } from './options';

/** What a secret is replaced with. */
export const REDACTED = '***';

/** `amqp://guest@127.0.0.1:5672/` — no password; username and vhost percent-encoded, IPv6 hosts bracketed. */
export function describeEndpoint(e: Endpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  const vhost = e.vhost === '/' ? '' : encodeURIComponent(e.vhost);
  return `${e.protocol}://${encodeURIComponent(e.username)}@${host}:${e.port}/${vhost}`;
}

/** TLS options with the private key and its passphrase replaced (certificates are public: kept). */
export function redactTls(tls: TlsOptions): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...tls };
  if (tls.key !== undefined) shown.key = REDACTED;
  if (tls.passphrase !== undefined) shown.passphrase = REDACTED;
  return shown;
}

/** An endpoint's fields with the password (and TLS secrets) replaced. */
export function redactEndpoint(e: Endpoint): Record<string, unknown> {
  const shown: Record<string, unknown> = {
    protocol: e.protocol,
    host: e.host,
    port: e.port,
    username: e.username,
    password: REDACTED,
    vhost: e.vhost,
  };
  if (e.tls !== undefined) shown.tls = redactTls(e.tls);
  return shown;
}

/** A property that `Object.keys`, spreads and `JSON.stringify` do not see. */
function hidden(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: false, writable: true, configurable: true });
}

function inspectEndpoint(this: Endpoint): Record<string, unknown> {
  return redactEndpoint(this);
}

const TLS_FIELDS = ['ca', 'cert', 'key', 'passphrase', 'servername', 'verify'] as const;

/** A TLS options copy whose JSON form and `util.inspect` hide the private key and passphrase (spreads still carry them). */
function makeTls(tls: TlsOptions): TlsOptions {
  const copy: TlsOptions = {};
  for (const key of TLS_FIELDS) {
    if (tls[key] !== undefined) Object.assign(copy, { [key]: tls[key] });
  }
  hidden(copy, 'toJSON', () => redactTls(copy));
  hidden(copy, inspect.custom, () => redactTls(copy));
  return copy;
}

/**
 * The one way an `Endpoint` is made: its fields, its password as a non-enumerable property, `util.inspect` showing
 * `password: '***'`, and its TLS options (copied) hiding their secrets from JSON and inspect.
 */
export function makeEndpoint(fields: Omit<Endpoint, 'password'>, password: string): Endpoint {
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

/** One `host`, `host:port`, `[v6]` or `[v6]:port` (or a comma-separated list of them): no password in there. */
const HOST_LIST = /^(\[[^\]]*\]|[^:[\]]*)(:\d*)?(,(\[[^\]]*\]|[^:[\]]*)(:\d*)?)*$/;

/**
 * The URL with its password replaced by `***`, for logs. Never throws. It may hide more than the password, never less:
 * - the password runs from the first `:` to the `@` before the host. When an `@` also follows the host part (a raw
 *   `/`, `?` or `#` in the password, or an `@` in the vhost or a query value), that is ambiguous, and everything up to
 *   the LAST `@` is hidden;
 * - without any `@`, text after a `:` that is not a port (`amqp://user:secret`, the host forgotten) is hidden to the
 *   end. A numeric password without a host (`amqp://user:1234`) reads as a port and is left alone.
 */
export function redactUrl(url: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?([\s\S]*)$/.exec(url);
  if (match === null) return url;
  const prefix = match[1] ?? '';
  const rest = match[2] ?? '';
  const colon = rest.indexOf(':');
  if (colon < 0) return url;
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  if (!rest.includes('@')) {
    if (HOST_LIST.test(authority)) return url;
    return `${prefix}${rest.slice(0, colon + 1)}${REDACTED}`;
  }
  const at = authority.includes('@') && !tail.includes('@') ? authority.lastIndexOf('@') : rest.lastIndexOf('@');
  if (colon > at) return url;
  return `${prefix}${rest.slice(0, colon + 1)}${REDACTED}${rest.slice(at)}`;
}

/**
 * Makes `util.inspect` print the instances of `type` as `label` followed by their `toJSON()` (e.g.
 * `Channel { id: 3, open: true, … }`): the one shape public objects print in, so what `inspect` shows never holds
 * more — a secret — than what `JSON.stringify` does.
 */
export function printAsJson(type: { prototype: { toJSON(): unknown } }, label: string): void {
  Object.defineProperty(type.prototype, inspect.custom, {
    value(this: { toJSON(): unknown }, _depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
      return `${label} ${show(this.toJSON(), options)}`;
    },
  });
}
