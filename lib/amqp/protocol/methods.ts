import { ProtocolError, ReplyCode } from '../errors';
import { Reader } from './reader';
import { METHODS, METHODS_BY_ID, type MethodArgs, type MethodName, type MethodSpec } from './spec.generated';

/** Method ids by `class.method` name. */
export const METHOD_IDS: Readonly<Record<MethodName, number>> = Object.fromEntries(
  METHODS.map((m) => [m.name, m.id]),
) as Record<MethodName, number>;

/** A decoded method frame. `name` narrows `args`. */
export type DecodedMethod = {
  [N in MethodName]: { name: N; classId: number; methodId: number; args: MethodArgs[N] };
}[MethodName];

const reader = new Reader(Buffer.alloc(0));

/** The spec of a method id, or a 503 COMMAND_INVALID error for one the protocol does not define. */
export function methodSpec(classId: number, methodId: number): MethodSpec {
  const spec = METHODS_BY_ID.get((classId << 16) | methodId);
  if (!spec) throw new ProtocolError(`unknown method ${classId}/${methodId}`, ReplyCode.COMMAND_INVALID);
  return spec;
}

/** Decode a method-frame payload. Throws ProtocolError on unknown ids or malformed fields. */
export function decodeMethod(payload: Buffer): DecodedMethod {
  if (payload.length < 4) throw new ProtocolError('method frame shorter than 4 bytes', ReplyCode.FRAME_ERROR);
  const classId = payload.readUInt16BE(0);
  const methodId = payload.readUInt16BE(2);
  const spec = methodSpec(classId, methodId);
  const r = reader.reset(payload, 4, payload.length);
  const args = spec.decode(r);
  return { name: spec.name, classId, methodId, args } as DecodedMethod;
}

/** The `class.method` name of an id pair, or `classId/methodId` when unknown (for error messages). */
export function methodName(classId: number, methodId: number): string {
  return METHODS_BY_ID.get((classId << 16) | methodId)?.name ?? `${classId}/${methodId}`;
}
