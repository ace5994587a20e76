import { ConfigError, CredentialsError } from './errors';

/**
 * Credentials that rotate (a password from a vault, an OAuth 2 token). A provider is called on every connect and
 * reconnect; when what it returns has an `expiresAt`, the connection calls it again at 80 % of the lifetime (as
 * RabbitMQ's Java client does) and hands the new secret to the broker with `connection.update-secret`, without
 * reconnecting.
 */
export type CredentialsProvider = () => Credentials | Promise<Credentials>;

/**
 * A username and password, or a token (sent as the password, with an empty username, as OAuth 2 backends read it).
 * Another shape, an unknown field or a field of the wrong type is a `ConfigError` naming the field
 * (`credentials.password`); the secret itself is never shown.
 */
export type Credentials =
  | {
      /** The user to log in as; it replaces the URL's. */
      username: string;
      /** Its password; it replaces the URL's. */
      password: string;
      /**
       * When these credentials expire: a Date or milliseconds since the epoch. Given, they are fetched again at 80 % of
       * their lifetime and handed to the broker without reconnecting; absent, they are fetched again on reconnect only.
       */
      expiresAt?: Date | number;
    }
  | {
      /** An OAuth 2 access token, sent as the password with an empty username. */
      token: string;
      /**
       * When the token expires: a Date or milliseconds since the epoch. Given, a new one is fetched at 80 % of its
       * lifetime and handed to the broker without reconnecting; absent, one is fetched again on reconnect only.
       */
      expiresAt?: Date | number;
    };

/** Credentials checked: what SASL sends, and when they expire (ms since the epoch), if they do. */
export interface ResolvedCredentials {
  username: string;
  password: string;
  expiresAtMs?: number;
}

/** Share of a secret's lifetime after which it is refreshed. */
export const REFRESH_AT = 0.8;
/** A refresh that failed is tried again after this long (or sooner, when the secret expires sooner). */
export const REFRESH_RETRY_MS = 5_000;

/** Calls the provider and checks what it returned (a ConfigError naming the field; the secret is never shown). */
export async function fetchCredentials(provider: CredentialsProvider): Promise<ResolvedCredentials> {
  const c: unknown = await provider();
  if (typeof c !== 'object' || c === null) {
    throw new ConfigError(
      'credentials',
      `the provider must return { username, password } or { token }, got ${c === null ? 'null' : typeof c}`,
    );
  }
  const o = c as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['username', 'password', 'token', 'expiresAt'].includes(key)) {
      throw new ConfigError(`credentials.${key}`, 'unknown field (known: username, password, token, expiresAt)');
    }
  }
  const expiresAtMs = expiry(o.expiresAt);
  if (o.token !== undefined) {
    if (typeof o.token !== 'string')
      throw new ConfigError('credentials.token', `must be a string, got a ${typeof o.token}`);
    if (o.username !== undefined || o.password !== undefined) {
      throw new ConfigError('credentials.token', 'give a token or a username and password, not both');
    }
    return { username: '', password: o.token, expiresAtMs };
  }
  if (typeof o.username !== 'string') {
    throw new ConfigError('credentials.username', `must be a string, got a ${typeof o.username}`);
  }
  if (typeof o.password !== 'string') {
    throw new ConfigError('credentials.password', `must be a string, got a ${typeof o.password}`);
  }
  return { username: o.username, password: o.password, expiresAtMs };
}

function expiry(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new ConfigError('credentials.expiresAt', 'must be a Date or a number of milliseconds since the epoch');
  }
  return ms;
}

/** When to refresh credentials fetched at `fetchedAtMs`: at 80 % of their lifetime (at once if already past it). */
export function refreshDelayMs(credentials: ResolvedCredentials, fetchedAtMs: number): number | undefined {
  if (credentials.expiresAtMs === undefined) return undefined;
  return Math.max(0, Math.floor((credentials.expiresAtMs - fetchedAtMs) * REFRESH_AT));
}

/** When to try a failed refresh again: REFRESH_RETRY_MS, or half the time left when less is left. */
export function retryDelayMs(expiresAtMs: number | undefined, nowMs: number): number {
  if (expiresAtMs === undefined) return REFRESH_RETRY_MS;
  return Math.max(100, Math.min(REFRESH_RETRY_MS, Math.floor((expiresAtMs - nowMs) / 2)));
}

/**
 * The provider's credentials for a connect or a refresh. What it returns is checked (a ConfigError, final); a
 * provider that throws (a vault that is down) is a CredentialsError, retried like a failed connect.
 */
export async function askForCredentials(provider: CredentialsProvider): Promise<ResolvedCredentials> {
  try {
    return await fetchCredentials(provider);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new CredentialsError(`the credentials provider failed: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

/** What a SecretRefresher does with a new secret, and whom it tells. */
export interface SecretRefreshHooks {
  /** Hands the new secret to the broker (`connection.update-secret`). */
  update(secret: string): Promise<void>;
  updated(): void;
  failed(error: Error, retryInMs: number): void;
}

/**
 * One connection's rotation of expiring credentials: asks the provider again at 80 % of their lifetime and hands the
 * new secret over; then again for the new one's lifetime, and so on. A failure (the provider throws, the broker does
 * not answer) is reported and tried again soon, before the old secret expires. `stop()` when the connection ends.
 */
export class SecretRefresher {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly provider: CredentialsProvider,
    private readonly hooks: SecretRefreshHooks,
  ) {}

  /** Schedules the first refresh for credentials fetched at `fetchedAtMs` (nothing when they do not expire). */
  start(credentials: ResolvedCredentials, fetchedAtMs: number): void {
    this.schedule(refreshDelayMs(credentials, fetchedAtMs), credentials.expiresAtMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number | undefined, expiresAtMs: number | undefined): void {
    if (delayMs === undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh(expiresAtMs);
    }, delayMs);
    // A connection with nothing else to do does not keep the process alive for its next refresh.
    this.timer.unref();
  }

  private async refresh(previousExpiresAtMs: number | undefined): Promise<void> {
    try {
      const fetchedAt = Date.now();
      const next = await askForCredentials(this.provider);
      await this.hooks.update(next.password);
      if (this.stopped) return;
      this.hooks.updated();
      this.schedule(refreshDelayMs(next, fetchedAt), next.expiresAtMs);
    } catch (err) {
      if (this.stopped) return;
      const retryInMs = retryDelayMs(previousExpiresAtMs, Date.now());
      this.hooks.failed(err instanceof Error ? err : new Error(String(err)), retryInMs);
      this.schedule(retryInMs, previousExpiresAtMs);
    }
  }
}
