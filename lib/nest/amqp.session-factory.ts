import { AmqpSession, type Logger, type SessionOptions } from '../amqp';
import { describeEndpoint } from '../amqp/redact';
import { resolveConnectionOptions } from '../amqp/url';
import { SESSION_OPTION_KEYS } from '../amqp/session-options';
import { DEFAULT_CONNECTION_NAME, DEFAULT_STARTUP_TIMEOUT_MS } from './amqp.constants';
import type { AmqpConnectionOptions } from './amqp-options.interface';
import { createAmqpLogger, describeError } from './amqp.logger';
import { warrenTelemetry } from './telemetry/telemetry';

/** Start-up could not reach the broker within `startupTimeout` (or the broker refused the login). */
export class AmqpStartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AmqpStartupError';
  }
}

/** The session for a connection's options, logging through Nest's Logger unless a logger is given. */
export function createSession(options: AmqpConnectionOptions): AmqpSession {
  const name = options.name ?? DEFAULT_CONNECTION_NAME;
  const session = new AmqpSession({
    ...sessionOptionsOf(options),
    name,
    failFast: false,
    logger: options.logger ?? createAmqpLogger(name),
  });
  warrenTelemetry().watchSession(session);
  return session;
}

/** Only what the session understands: module, server and client options carry much more. */
function sessionOptionsOf(options: AmqpConnectionOptions): SessionOptions {
  const picked: Record<string, unknown> = {};
  for (const key of SESSION_OPTION_KEYS) {
    const value = (options as unknown as Record<string, unknown>)[key];
    if (value !== undefined) picked[key] = value;
  }
  return picked as SessionOptions;
}

/** Where a connection points, for logs and errors: endpoints without passwords. */
export function describeTarget(options: AmqpConnectionOptions): string {
  try {
    return resolveConnectionOptions(options)
      .endpoints.map((e) => describeEndpoint(e))
      .join(', ');
  } catch (err) {
    return `(invalid connection options: ${describeError(err)})`;
  }
}

/**
 * Connect per the start-up policy. Default: wait up to `startupTimeout` for the first connection and fail with an
 * AmqpStartupError naming the target (closing the session). With `startWithoutBroker`: return at once; the session
 * keeps trying in the background.
 */
export async function startSession(
  session: AmqpSession,
  options: AmqpConnectionOptions,
  logger: Logger,
): Promise<void> {
  const name = options.name ?? DEFAULT_CONNECTION_NAME;
  const connecting = session.connect();
  if (options.startWithoutBroker) {
    connecting.then(
      () => undefined,
      (err: unknown) =>
        logger.error(`connection '${name}' to ${describeTarget(options)} gave up: ${describeError(err)}`),
    );
    if (!session.isReady)
      logger.warn(`starting without the broker: connection '${name}' keeps trying ${describeTarget(options)}`);
    return;
  }
  const timeout = options.startupTimeout ?? DEFAULT_STARTUP_TIMEOUT_MS;
  try {
    await Promise.race([connecting, session.whenReady(timeout)]);
  } catch (err) {
    connecting.catch(() => undefined);
    await session.close().catch(() => undefined);
    throw new AmqpStartupError(
      `Warren connection '${name}' could not connect to ${describeTarget(options)} within ${timeout} ms: ${describeError(err)}`,
      { cause: err },
    );
  }
}
