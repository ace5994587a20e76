import type { FieldTable } from '../../amqp';
import { WarrenHeaders } from '../amqp.constants';
import { describeError } from '../amqp.logger';
import { CONTENT_TYPE_JSON } from '../serialization/default.serializer';
import type { AmqpSerializer, SerializedBody } from '../serialization/amqp-serializer.interface';
import type { RpcErrorEnvelope } from './rpc-error';

/** A reply's body and the properties that describe it. */
export type ReplyBody = SerializedBody & { headers?: FieldTable };

/** The empty reply that closes a stream of replies. */
export const STREAM_END_REPLY: ReplyBody = Object.freeze({
  body: Buffer.alloc(0),
  headers: Object.freeze({ [WarrenHeaders.STREAM]: 'end' }),
});

/** A reply body: the route's serialization of the value, or a JSON error envelope flagged with `x-warren-error`. */
export function encodeReply(
  serializer: AmqpSerializer | undefined,
  error: RpcErrorEnvelope | undefined,
  value: unknown,
): ReplyBody {
  if (!error && serializer) {
    try {
      const { body, contentType, contentEncoding } = serializer.serialize(value);
      // No headers table at all on a plain reply: nothing for the broker and the caller to decode.
      return { body, contentType, contentEncoding };
    } catch (err) {
      error = {
        status: 'error',
        message: `The reply cannot be serialized: ${describeError(err)}`,
        code: 'SERIALIZATION_FAILED',
      };
    }
  }
  const envelope = error ?? { status: 'error', message: 'no reply' };
  return {
    body: Buffer.from(JSON.stringify(envelope)),
    contentType: CONTENT_TYPE_JSON,
    headers: { [WarrenHeaders.ERROR]: true },
  };
}
