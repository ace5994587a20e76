import { ConfigError } from '../../amqp';
import { checkKnownKeys } from '../../amqp/declare-options';
import type { BatchOptions } from '../amqp-options.interface';
import { DEFAULT_BATCH_TIMEOUT_MS } from '../amqp.constants';

/** A handler's batch options, checked, with the defaults filled in. */
export interface ResolvedBatchOptions {
  size: number;
  timeoutMs: number;
}

const BATCH_KEYS = ['size', 'timeoutMs'];

/** Validates `batch` of the handler named by `origin` (a ConfigError names the field: `handler 'x'.batch.size`). */
export function resolveBatchOptions(batch: BatchOptions, origin: string): ResolvedBatchOptions {
  const where = `${origin}.batch`;
  if (typeof batch !== 'object' || batch === null || Array.isArray(batch)) {
    throw new ConfigError(
      where,
      `must be an object { size, timeoutMs? }, got ${batch === null ? 'null' : typeof batch}`,
    );
  }
  checkKnownKeys(where, batch, BATCH_KEYS, 'batch');
  const { size, timeoutMs = DEFAULT_BATCH_TIMEOUT_MS } = batch;
  if (!Number.isInteger(size) || size < 1) {
    throw new ConfigError(`${where}.size`, `must be an integer >= 1, got ${String(size)}`);
  }
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1) {
    throw new ConfigError(`${where}.timeoutMs`, `must be a number of ms >= 1, got ${String(timeoutMs)}`);
  }
  return { size, timeoutMs };
}
