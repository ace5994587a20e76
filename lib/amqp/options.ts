/**
 * Connection options: what callers may pass (`ConnectionOptionsInput`, a URL, or several),
 * and the fully-resolved shape the connection works from (`ResolvedConnectionOptions`).
 * URL parsing lives in `url.ts`, validation in `option-checks.ts`, resolution (URLs and fields combined, defaults) in
 * `resolve-options.ts`.
 */

/** TLS settings (amqps). `verify` is on by default. */
export interface TlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  servername?: string;
  /** Verify the server certificate (default true). */
  verify?: boolean;
}

/** One broker endpoint. */
export interface Endpoint {
  protocol: 'amqp' | 'amqps';
  host: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
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
  protocol?: 'amqp' | 'amqps';
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  vhost?: string;
  /** Heartbeat in seconds we propose (0 disables if the server agrees). Default 60. */
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
  locale?: string;
  /** Extra client properties sent in `start-ok` (merged over the defaults). */
  clientProperties?: Record<string, unknown>;
  /** Connection name shown in the management UI (client property `connection_name`). */
  connectionName?: string;
  tls?: TlsOptions;
  /** TCP_NODELAY; default true. */
  noDelay?: boolean;
  /** TCP keepalive; default true. */
  keepAlive?: boolean;
  /** Shuffle the URL list before trying. Default false. */
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
}

/** Fully resolved options: every default applied, every value validated. */
export interface ResolvedConnectionOptions {
  endpoints: Endpoint[];
  heartbeat: number;
  frameMax: number;
  channelMax: number;
  connectionAttempts: number;
  retryDelayMs: number;
  connectionTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** 0 = no limit. */
  blockedConnectionTimeoutMs: number;
  operationTimeoutMs: number;
  locale: string;
  clientProperties: Record<string, unknown>;
  connectionName?: string;
  noDelay: boolean;
  keepAlive: boolean;
  shuffleUrls: boolean;
  mechanisms: SaslMechanism[];
  maxMessageSize: number;
  /** 0 = no bound. */
  confirmTimeoutMs: number;
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
