import { ConfigError } from '../../amqp';
import type { RpcErrorEnvelope } from '../server/rpc-error';
import { IssueList, MAX_ISSUES, compileJsonSchema, type JsonSchema, type PayloadIssue } from './json-schema-subset';

/**
 * A Standard Schema v1 validator (https://standardschema.dev): what zod, valibot, arktype and others hand out. The
 * interface is copied here, as the spec asks, so that Warren depends on none of them.
 */
export interface StandardSchemaV1 {
  /** The Standard Schema properties: the standard's version, the library's name and its validate function. */
  readonly '~standard': StandardSchemaProps;
}

/** The `~standard` property of a Standard Schema, with the optional Standard JSON Schema converter. */
export interface StandardSchemaProps {
  /** The version of the standard: 1. */
  readonly version: 1;
  /** The name of the schema library (`zod`, `valibot`...): Warren names it when its validator throws. */
  readonly vendor: string;
  /**
   * Validates an unknown value: its result, at once or as a promise, holds either the output value or the issues.
   * Warren calls it on receipt with the deserialized payload, before the handler runs.
   */
  readonly validate: (value: unknown) => StandardSchemaResult | Promise<StandardSchemaResult>;
  /** Standard JSON Schema (same site): when there, the AsyncAPI document shows the payload's JSON Schema. */
  readonly jsonSchema?: {
    /**
     * The JSON Schema of the values the schema accepts, in the dialect `target` names: Warren asks for `draft-07`.
     * It may throw when the library cannot express the schema; the document then shows no payload schema.
     */
    readonly input: (options: { readonly target: string }) => Record<string, unknown>;
  };
}

/**
 * What a Standard Schema's `validate` returns: the output value when the input is valid, the issues when it is not.
 * `issues` present means failure.
 */
export type StandardSchemaResult =
  | {
      /** The output value: the input, or what the library turned it into. The handler gets this value. */
      readonly value: unknown;
      /** Absent on success. */
      readonly issues?: undefined;
    }
  | {
      /** Why the value is invalid: one issue or more. Warren keeps the first 20. */
      readonly issues: ReadonlyArray<StandardSchemaIssue>;
    };

/** One issue of a failed Standard Schema validation: a message and, when there is one, where in the value. */
export interface StandardSchemaIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where, from the value's root: each segment a key or index, bare or in an object. Absent for the value itself. */
  readonly path?: ReadonlyArray<
    | PropertyKey
    | {
        /** The key or index of this segment of the path. */
        readonly key: PropertyKey;
      }
  >;
}

/**
 * A handler's payload schema (`schema` in its options): a JSON Schema of the subset Warren enforces (see
 * `JsonSchema`) or a Standard Schema validator. It is checked on receipt, before the handler runs; the handler gets
 * the validator's output value (a Standard Schema may transform it; a JSON Schema never does).
 */
export type HandlerSchema = JsonSchema | StandardSchemaV1;

/** The outcome of checking a payload. */
export type PayloadCheck = { ok: true; value: unknown } | { ok: false; issues: PayloadIssue[] };

/** A handler's schema, ready to check payloads and to describe them. */
export interface PayloadSchema {
  /** Never throws or rejects: a validator that throws gives one issue saying so. */
  check(value: unknown): PayloadCheck | Promise<PayloadCheck>;
  /** The payload's JSON Schema, for the AsyncAPI document; undefined when a Standard Schema cannot give one. */
  describe(): Record<string, unknown> | undefined;
}

/** Turns a handler's `schema` option into a PayloadSchema; a malformed one is a ConfigError naming `field`. */
export function resolvePayloadSchema(schema: unknown, field: string): PayloadSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new ConfigError(field, 'must be a JSON Schema object or a Standard Schema validator');
  }
  if ('~standard' in schema) return standardSchema(schema as StandardSchemaV1, field);
  const check = compileJsonSchema(schema as JsonSchema, field);
  const described = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return {
    check(value) {
      const issues = new IssueList();
      return check(value, issues, []) ? { ok: true, value } : { ok: false, issues: issues.items };
    },
    describe: () => structuredClone(described),
  };
}

function standardSchema(schema: StandardSchemaV1, field: string): PayloadSchema {
  const props = schema['~standard'] as Partial<StandardSchemaProps> | undefined;
  if (typeof props !== 'object' || props === null || props.version !== 1 || typeof props.validate !== 'function') {
    throw new ConfigError(field, "a Standard Schema needs '~standard' with version 1 and a validate function");
  }
  const validate = props.validate.bind(props);
  const vendor = String(props.vendor);
  const settle = (result: StandardSchemaResult): PayloadCheck =>
    result.issues
      ? { ok: false, issues: result.issues.slice(0, MAX_ISSUES).map(toIssue) }
      : { ok: true, value: result.value };
  const thrown = (err: unknown): PayloadCheck => ({
    ok: false,
    issues: [
      { message: `the ${vendor} validator threw: ${err instanceof Error ? err.message : String(err)}`, path: [] },
    ],
  });
  return {
    check(value) {
      let result: StandardSchemaResult | Promise<StandardSchemaResult>;
      try {
        result = validate(value);
      } catch (err) {
        return thrown(err);
      }
      return isPromiseLike(result) ? Promise.resolve(result).then(settle, thrown) : settle(result);
    },
    describe() {
      try {
        return props.jsonSchema?.input({ target: 'draft-07' });
      } catch {
        // The library cannot express this schema in JSON Schema: the document shows no payload schema.
        return undefined;
      }
    },
  };
}

function isPromiseLike<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

function toIssue(issue: StandardSchemaIssue): PayloadIssue {
  const path = (issue.path ?? []).map((segment) => {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    return typeof key === 'number' ? key : String(key);
  });
  return { message: String(issue.message), path };
}

/** `id: must be number; items/0: ...` for logs and error messages. */
export function describeIssues(issues: readonly PayloadIssue[]): string {
  return issues.map((i) => (i.path.length > 0 ? `${i.path.join('/')}: ${i.message}` : i.message)).join('; ');
}

/** The error reply to a request whose payload fails its handler's schema. */
export function validationFailure(pattern: string, issues: PayloadIssue[]): RpcErrorEnvelope {
  return {
    status: 'error',
    message: `The payload of '${pattern}' does not match its schema: ${describeIssues(issues)}`,
    code: VALIDATION_FAILED,
    issues,
  };
}

/** The `code` of an error reply to a request whose payload fails its handler's schema. */
export const VALIDATION_FAILED = 'VALIDATION_FAILED';
