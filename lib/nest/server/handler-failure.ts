import { RpcException } from '@nestjs/microservices';
import { RpcProxy } from '@nestjs/microservices/context/rpc-proxy.js';
import { AmqpContext } from '../ctx-host/amqp.context';
import { toErrorEnvelope } from './rpc-error';

/**
 * Why an event handler failed, as the retry and parking-lot headers and the logs record it: the thrown error's own
 * name and message — not what Nest's exception filters made of it for an RPC caller, which for anything but an
 * RpcException is `{ status: 'error', message: 'Internal server error' }`.
 */
export interface HandlerFailure {
  /** The error's class (`TypeError`, `RpcException`, ...); undefined when what was thrown is not an Error. */
  name?: string;
  message: string;
  status: string | number;
  code?: string | number;
}

/** What each failed handler threw, by its context, noted before Nest's exception filters saw it. */
const thrown = new WeakMap<AmqpContext, { error: unknown }>();
let watching = false;

/**
 * Nest runs every handler (static or request-scoped, Nest 11 and 12) through its RpcProxy, whose `handleError` hands
 * a failure to the exception filters together with the handler's arguments: the one place where the thrown error and
 * the AmqpContext meet before a filter replaces the error. The server notes it there and lets Nest go on exactly as
 * before (RPC callers still get Nest's reply). Installed once, by the first AmqpServer.
 */
export function watchHandlerFailures(): void {
  if (watching) return;
  watching = true;
  const proto = RpcProxy.prototype as unknown as {
    handleError?: (this: unknown, handler: unknown, args: unknown[], error: unknown, ...rest: unknown[]) => unknown;
  };
  const handleError = proto.handleError;
  // A Nest without it: failures are recorded as the filters report them.
  if (typeof handleError !== 'function') return;
  proto.handleError = function (this: unknown, handler, args, error, ...rest) {
    const ctx = Array.isArray(args) ? args.find((a) => a instanceof AmqpContext) : undefined;
    if (ctx) thrown.set(ctx as AmqpContext, { error });
    return handleError.call(this, handler, args, error, ...rest);
  };
}

/**
 * The failure of the handler of `ctx`, given what Nest reported (`reported`): the name and message of the error it
 * threw (for an RpcException, the message it carries to the wire), its code if it has one; the status, and the code
 * otherwise, from the report.
 */
export function describeFailure(reported: unknown, ctx: AmqpContext): HandlerFailure {
  const envelope = toErrorEnvelope(reported);
  const seen = thrown.get(ctx);
  const error = seen ? seen.error : reported;
  if (!(error instanceof Error)) {
    // A string or a plain object: what it says of itself.
    const own = seen ? toErrorEnvelope(error) : envelope;
    return { message: own.message, status: own.status, code: own.code };
  }
  const code = (error as { code?: unknown }).code;
  return {
    name: errorName(error),
    message: error instanceof RpcException ? envelope.message : error.message,
    status: envelope.status,
    code: typeof code === 'string' || typeof code === 'number' ? code : envelope.code,
  };
}

/** `error.name`, or its class's name when it kept Error's (`class SkuError extends Error {}`). */
function errorName(error: Error): string {
  if (error.name !== 'Error') return error.name;
  const ctor = (error as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : error.name;
}

/** How a log line names a failure: `TypeError: bad sku`. */
export function failureText(failure: HandlerFailure): string {
  return failure.name ? `${failure.name}: ${failure.message}` : failure.message;
}
