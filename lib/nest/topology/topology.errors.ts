import { ChannelError, ReplyCode } from '../../amqp';

/** What kind of entity a topology error is about. */
export type TopologyEntity = 'exchange' | 'queue' | 'binding' | 'exchange binding';

/** A declaration the broker refused (other than a mismatch): access refused, exclusive queue locked, missing exchange... */
export class TopologyError extends Error {
  constructor(
    message: string,
    /** What kind of entity. */
    readonly entity: TopologyEntity,
    /** Its name (for a binding: what it binds). */
    readonly entityName: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * 406 PRECONDITION_FAILED: the entity exists on the broker with other settings. `argument` names what differs
 * (`x-message-ttl`, `durable`, `type`...) when the broker said so.
 */
export class TopologyMismatchError extends TopologyError {
  constructor(
    entity: TopologyEntity,
    entityName: string,
    /** The setting that differs (`x-message-ttl`, `durable`, `type`...), when the broker named it. */
    readonly argument: string | undefined,
    /** The broker's reply text. */
    readonly replyText: string,
    options?: { cause?: unknown },
  ) {
    super(
      queueTypeMismatch(entityName, argument, replyText) ??
        `${entity} '${entityName}' already exists on the broker with different settings` +
          `${argument ? ` (argument '${argument}' differs)` : ''}: ${replyText}`,
      entity,
      entityName,
      options,
    );
  }
}

/**
 * A queue of another type than declared, in words: RabbitMQ only says "inequivalent arg 'x-queue-type' …
 * received 'stream' but current is 'classic'", and a queue's type cannot be changed in place.
 */
function queueTypeMismatch(name: string, argument: string | undefined, replyText: string): string | undefined {
  if (argument !== 'x-queue-type') return undefined;
  // "received 'stream' but current is 'classic'", "received the value 'quorum' of type 'longstr' but current is none"
  const m =
    /received (?:none|(?:the value )?'([^']*)'(?: of type '[^']*')?) but current is (?:none|(?:the value )?'([^']*)'(?: of type '[^']*')?)/.exec(
      replyText,
    );
  if (!m) return undefined;
  const declared = m[1] ?? 'classic';
  const current = m[2] ?? 'classic';
  return (
    `queue '${name}' exists on the broker as a ${current} queue, but this application declares it as a ${declared} ` +
    `queue: a queue's type cannot change; delete the queue (or migrate its messages) or declare it as ${current} ` +
    `(${replyText})`
  );
}

/** Two places in the application define the same entity differently. */
export class TopologyConflictError extends TopologyError {}

/** Wraps a declaration failure with the entity it concerns. */
export function topologyFailure(err: unknown, entity: TopologyEntity, name: string): Error {
  if (err instanceof ChannelError) {
    if (err.replyCode === ReplyCode.PRECONDITION_FAILED) {
      const argument = /inequivalent arg '([^']+)'/.exec(err.replyText)?.[1];
      return new TopologyMismatchError(entity, name, argument, err.replyText, { cause: err });
    }
    return new TopologyError(`declaring ${entity} '${name}' failed: ${err.replyCode} ${err.replyText}`, entity, name, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}
