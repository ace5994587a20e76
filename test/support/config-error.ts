import { ConfigError } from '../../lib/amqp/errors';

/** The ConfigError `fn` throws (any other error is rethrown; nothing thrown fails the test). */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}
