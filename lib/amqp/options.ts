/**
 * Connection options: what callers may pass (`ConnectionOptionsInput`, a URL, or several),
 * and the fully-resolved shape the connection works from (`ResolvedConnectionOptions`).
 * URL parsing lives in `url.ts`, validation in `option-checks.ts`, resolution (URLs and fields combined, defaults) in
 * `resolve-options.ts`.
 */

import type { CredentialsProvider } from './credentials';

/**
 * TLS settings of an `amqps:` endpoint. In an options object `ca`, `cert` and `key` are PEM contents; in a URL
 * (`?ca=/path&cert=/path&key=/path`) they are file paths, read when the options are resolved. Bad key material (a
 * wrong passphrase, a PEM that does not parse, a certificate that does not match its key) is a {@link ConfigError}
 * naming the field (`tls.key`, `tls.passphrase`, `tls.cert`, `tls.ca`), raised before any connect and never retried.
 */
export interface TlsOptions {
  /** CA certificate(s), PEM, that the server certificate must chain to. Default: Node's bundled root CAs. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate, PEM: sent to the broker (required for the `EXTERNAL` mechanism). */
  cert?: string | Buffer;
  /** Private key of `cert`, PEM; never printed. */
  key?: string | Buffer;
  /** Passphrase of an encrypted `key`; never printed. */
  passphrase?: string;
  /** Name the server certificate must carry (and the SNI sent). Default: the endpoint's host, unless it is an IP. */
  servername?: string;
  /** Verify the server certificate (default true). */
  verify?: boolean;
}

/**
 * One broker endpoint, as resolved from a URL or an options object. `password` is a non-enumerable property
 * (invisible to `JSON.stringify`, `Object.keys` and spreads) and `util.inspect()` shows it as `'***'`.
 */
export interface Endpoint {
  /** `amqps` for TLS. */
  protocol: 'amqp' | 'amqps';
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port: 5672 by default, 5671 for `amqps`. */
  port: number;
  /** Login user (ignored by `EXTERNAL`, which logs in as the client certificate's user). */
  username: string;
  /** Login password; never printed. */
  password: string;
  /** Virtual host, percent-decoded (`/` by default). */
  vhost: string;
  /** TLS settings; present only for `amqps`. */
  tls?: TlsOptions;
}

/** SASL mechanisms the client can speak; chosen from what the server offers, in this order of preference. */
export type SaslMechanism = 'PLAIN' | 'AMQPLAIN' | 'EXTERNAL';

/** What a caller may give: every field optional; URL query options use the snake_case names. */
export interface ConnectionOptionsInput {
  /**
   * One URL or several (tried in order, or shuffled with `shuffleUrls`). Each URL gives its own endpoint (host, port,
   * credentials, vhost, TLS options); connection-level query options (heartbeat, frame_max, ...) are taken from the
   * FIRST URL only. The other fields of this object override what the URLs say. Rules: `url.ts`, `resolve-options.ts`.
   */
  url?: string | string[];
  /** `amqps` for TLS; replaces every URL's scheme. Default without a URL: `amqps` when `tls` is given, else `amqp`. */
  protocol?: 'amqp' | 'amqps';
  /** Replaces every endpoint's host. Default `127.0.0.1` (without a URL). */
  host?: string;
  /** Replaces every endpoint's port. Default 5672, or 5671 for `amqps`. */
  port?: number;
  /** Replaces every endpoint's user. Default `guest`. */
  username?: string;
  /** Replaces every endpoint's password. Default `guest`. Never printed. */
  password?: string;
  /** Replaces every endpoint's vhost (not percent-encoded here). Default `/`. */
  vhost?: string;
  /** Heartbeat we propose, seconds: the lower non-zero of ours and the broker's is used; 0 disables. Default 60. */
  heartbeat?: number;
  /** Largest frame we accept, bytes. Default 131072, from 8192 to 16 MiB. */
  frameMax?: number;
  /** Highest channel number we accept. Default 2047. */
  channelMax?: number;
  /** How many times the whole URL list is tried. Default 1. */
  connectionAttempts?: number;
  /** Seconds to wait between attempts. Default 2. */
  retryDelay?: number;
  /** Seconds for the TCP (and TLS) connect. Default 10. */
  connectionTimeout?: number;
  /** Seconds for the whole bring-up: TCP + TLS + AMQP handshake. Default 20. */
  handshakeTimeout?: number;
  /** Seconds a publish may wait while the broker blocks us before failing. Default: no limit (0). */
  blockedConnectionTimeout?: number;
  /** Default timeout, seconds, for synchronous methods (declare, bind, ...). Default 30. */
  operationTimeout?: number;
  /** Locale sent in `start-ok`. Default `en_US`. */
  locale?: string;
  /** Extra client properties sent in `start-ok` (merged over the defaults). */
  clientProperties?: Record<string, unknown>;
  /** Connection name shown in the management UI (client property `connection_name`). */
  connectionName?: string;
  /** TLS settings, merged over every `amqps` endpoint's own (a URL's `ca`, `cert`...); needs `amqps`. */
  tls?: TlsOptions;
  /** TCP_NODELAY; default true. */
  noDelay?: boolean;
  /** TCP keepalive; default true. */
  keepAlive?: boolean;
  /** Try the URLs in a random order, shuffled again each round. Default false. */
  shuffleUrls?: boolean;
  /** SASL mechanisms we allow, in order of preference. Default PLAIN, AMQPLAIN; EXTERNAL only when listed here. */
  mechanisms?: SaslMechanism[];
  /** Largest message body accepted from the broker, bytes. Default 128 MiB. */
  maxMessageSize?: number;
  /**
   * Milliseconds a confirm-mode publish waits for the broker's ack or nack before it rejects with
   * TimeoutError (the message may still have been delivered). Default 30000; 0 waits forever.
   */
  confirmTimeoutMs?: number;
  /**
   * Rotating credentials: called on every connect and reconnect instead of using the URL's username and password;
   * refreshed with `connection.update-secret` at 80 % of their lifetime when they carry an `expiresAt`.
   */
  credentials?: CredentialsProvider;
}

/**
 * Fully resolved options (what `resolveConnectionOptions` returns and `AmqpConnection.options` holds): every default
 * applied, every value validated, durations converted to milliseconds.
 */
export interface ResolvedConnectionOptions {
  /** The endpoints to try, in order (one per URL, or per host of a multi-host URL). */
  endpoints: Endpoint[];
  /** Heartbeat we propose, seconds (0 disables). */
  heartbeat: number;
  /** Largest frame we accept, bytes. */
  frameMax: number;
  /** Highest channel number we accept. */
  channelMax: number;
  /** Rounds over the endpoint list of a plain connect. */
  connectionAttempts: number;
  /** Delay between those rounds, ms. */
  retryDelayMs: number;
  /** Bound on the TCP (and TLS) connect, ms. */
  connectionTimeoutMs: number;
  /** Bound on TCP + TLS + AMQP handshake, ms. */
  handshakeTimeoutMs: number;
  /** How long a publish may wait while the broker blocks the connection, ms; 0 = no limit. */
  blockedConnectionTimeoutMs: number;
  /** Default timeout of synchronous methods, ms. */
  operationTimeoutMs: number;
  /** Locale sent in `start-ok`. */
  locale: string;
  /** Extra client properties, merged over Warren's own. */
  clientProperties: Record<string, unknown>;
  /** Client property `connection_name`, when set. */
  connectionName?: string;
  /** TCP_NODELAY. */
  noDelay: boolean;
  /** TCP keepalive. */
  keepAlive: boolean;
  /** Try the endpoints in a random order each round. */
  shuffleUrls: boolean;
  /** SASL mechanisms allowed, in order of preference. */
  mechanisms: SaslMechanism[];
  /** Largest message body accepted, bytes. */
  maxMessageSize: number;
  /** How long a confirm-mode publish waits for its confirm, ms; 0 = no bound. */
  confirmTimeoutMs: number;
  /** Rotating credentials: the provider asked on every connect (see `ConnectionOptionsInput.credentials`). */
  credentials?: CredentialsProvider;
}

export const DEFAULTS = {
  heartbeat: 60,
  frameMax: 131072,
  minFrameMax: 8192,
  /**
   * Largest frame_max we may propose: a frame straddling socket reads is assembled in one buffer of its
   * announced size (checked against the negotiated frame_max), so this bounds what a peer can make us allocate.
   */
  maxFrameMax: 16 * 1024 * 1024,
  channelMax: 2047,
  connectionAttempts: 1,
  retryDelay: 2,
  connectionTimeout: 10,
  handshakeTimeout: 20,
  blockedConnectionTimeout: 0,
  operationTimeout: 30,
  locale: 'en_US',
  maxMessageSize: 128 * 1024 * 1024,
  confirmTimeoutMs: 30_000,
} as const;
