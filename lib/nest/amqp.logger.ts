import { Logger as NestLogger } from '@nestjs/common';
import type { Logger } from '../amqp';

/** Nest's Logger with context `Warren:<connection>`, shaped as the AMQP client's Logger. */
export function createAmqpLogger(connection: string): Logger & { nest: NestLogger } {
  const nest = new NestLogger(`Warren:${connection}`);
  return {
    nest,
    debug: (m) => nest.debug(m),
    log: (m) => nest.log(m),
    warn: (m) => nest.warn(m),
    error: (m) => nest.error(m),
  };
}

/** A message for logs from anything thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err !== null && typeof err === 'object') {
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    try {
      return JSON.stringify(err);
    } catch {
      return String(err);
    }
  }
  return String(err);
}
