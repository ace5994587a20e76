/**
 * The body of an error reply (flagged with the `x-warren-error: true` header). `status` and `message` are always
 * there; `code` when the error had one; any other fields of an object thrown through `RpcException` are kept.
 */
export interface RpcErrorEnvelope {
  /** `error`, or the `status` of an object thrown through `RpcException`. */
  status: string | number;
  /** The error's message. */
  message: string;
  /** The error's `code`, when it had one (Warren's own: `NO_HANDLER`, `DESERIALIZATION_FAILED`...). */
  code?: string | number;
  [key: string]: unknown;
}

/** What an RPC handler's failure (as Nest's exception filters report it) becomes on the wire. */
export function toErrorEnvelope(err: unknown): RpcErrorEnvelope {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { status: 'error', message: err.message, ...(isCode(code) ? { code } : {}) };
  }
  if (err !== null && typeof err === 'object') {
    const o = err as Record<string, unknown>;
    const status = typeof o.status === 'string' || typeof o.status === 'number' ? o.status : 'error';
    const message = typeof o.message === 'string' ? o.message : safeJson(o);
    const envelope: RpcErrorEnvelope = { ...jsonSafe(o), status, message };
    if (isCode(o.code)) envelope.code = o.code;
    return envelope;
  }
  return { status: 'error', message: String(err) };
}

/**
 * The error `AmqpClient.send()` emits for an error reply: `status`, `message`, `code` and the whole envelope in
 * `details`.
 */
export class AmqpRpcError extends Error {
  /** The envelope's `status`. */
  readonly status: string | number;
  /** The envelope's `code`, when it has one. */
  readonly code?: string | number;
  /** The whole envelope, extra fields of an `RpcException` object included. */
  readonly details: RpcErrorEnvelope;

  constructor(
    envelope: RpcErrorEnvelope,
    /** The pattern of the call that failed. */
    readonly pattern?: string,
  ) {
    super(envelope.message);
    this.name = 'AmqpRpcError';
    this.status = envelope.status;
    this.code = envelope.code;
    this.details = envelope;
  }
}

/** Reads an error reply body back (tolerating non-Warren servers that send something else). */
export function fromErrorBody(value: unknown): RpcErrorEnvelope {
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) return toErrorEnvelope(value);
  if (typeof value === 'string') return { status: 'error', message: value };
  return { status: 'error', message: 'remote handler failed' };
}

function isCode(v: unknown): v is string | number {
  return typeof v === 'string' || typeof v === 'number';
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

function jsonSafe(o: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  } catch {
    return {};
  }
}
