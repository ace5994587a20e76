import { schemas } from '@asyncapi/specs';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

let validator: ValidateFunction | undefined;

/**
 * The official AsyncAPI 3.0.0 JSON schema (`@asyncapi/specs`), compiled once. The bundled schema carries its own copy
 * of the draft-07 meta-schema, so Ajv's built-in one is left out (`meta: false`) or the two ids would clash.
 */
function officialSchema(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false });
    addFormats(ajv);
    validator = ajv.compile(schemas['3.0.0']);
  }
  return validator;
}

/**
 * What is wrong with an AsyncAPI 3.0 document, [] when nothing: what the official JSON schema refuses, then what a
 * JSON schema cannot see: `$ref`s that point nowhere, and operation (and reply) messages that are not messages of the
 * operation's (or reply's) channel, as the specification requires.
 */
export function asyncApiProblems(doc: unknown): string[] {
  const validate = officialSchema();
  const problems: string[] = [];
  if (!validate(doc)) {
    for (const e of validate.errors ?? []) problems.push(`schema: ${e.instancePath || '/'} ${e.message ?? ''}`);
  }
  walk(doc, '', (ref, at) => {
    if (!ref.startsWith('#/') || resolvePointer(doc, ref.slice(1)) === undefined) {
      problems.push(`${at}: $ref '${ref}' resolves to nothing`);
    }
  });
  const operations = (doc as { operations?: Record<string, Operation> }).operations ?? {};
  for (const [id, op] of Object.entries(operations)) {
    for (const m of op.messages ?? []) {
      if (!m.$ref.startsWith(`${op.channel.$ref}/messages/`)) {
        problems.push(`operation '${id}': message '${m.$ref}' is not a message of its channel '${op.channel.$ref}'`);
      }
    }
    const reply = op.reply;
    for (const m of reply?.messages ?? []) {
      if (!reply?.channel || !m.$ref.startsWith(`${reply.channel.$ref}/messages/`)) {
        problems.push(`operation '${id}': reply message '${m.$ref}' is not a message of the reply channel`);
      }
    }
  }
  return problems;
}

interface Operation {
  channel: { $ref: string };
  messages?: Array<{ $ref: string }>;
  reply?: { channel?: { $ref: string }; messages?: Array<{ $ref: string }> };
}

function walk(value: unknown, at: string, onRef: (ref: string, at: string) => void): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, `${at}/${i}`, onRef));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string') onRef(v, at);
    else walk(v, `${at}/${k}`, onRef);
  }
}

/** RFC 6901. */
function resolvePointer(doc: unknown, pointer: string): unknown {
  let node: unknown = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null || !(key in node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
