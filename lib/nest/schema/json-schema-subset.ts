import { ConfigError } from '../../amqp';
import { canonical } from '../topology/queue-arguments';

/**
 * A JSON Schema (draft-07 / 2020-12 keywords) of the subset Warren enforces itself, with no dependency:
 *
 * - `type` (`null`, `boolean`, `object`, `array`, `number`, `integer`, `string`, or a list of them), `enum`, `const`;
 * - objects: `properties`, `required`, `additionalProperties` (a boolean or a schema), `patternProperties`,
 *   `minProperties`, `maxProperties`;
 * - arrays: `items` (one schema for every item), `minItems`, `maxItems`, `uniqueItems`;
 * - strings: `minLength`, `maxLength` (in code points), `pattern` (a JavaScript regular expression, Unicode mode);
 * - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers), `multipleOf`;
 * - `allOf`, `anyOf`, `oneOf`, `not`.
 *
 * A keyword for one type (`minLength`, `items`...) lets a value of another type through, as in JSON Schema: pair it
 * with `type`. Every keyword of the subset is enforced on receipt, before the handler runs.
 *
 * Annotations are accepted and not enforced: `$schema`, `$id`, `$comment`, `title`, `description`, `default`,
 * `examples`, `deprecated`, `readOnly`, `writeOnly`, `format`, `contentMediaType`, `contentEncoding`, and `x-`
 * extensions. Any other keyword (`$ref`, `if`, tuple `items`...) is a ConfigError at start-up: a schema is never
 * half-enforced. For the whole of JSON Schema, pass a Standard Schema validator (ajv wrapped in `~standard`, zod...).
 */
export interface JsonSchema {
  /**
   * The value must be of this type, or of one of these: `number` is a finite number, `integer` one with no fraction,
   * `object` neither an array nor null. Enforced on receipt. A type name is a `string`, not a union of literals, so
   * that a schema imported from a .json file fits.
   */
  type?: string | readonly string[];
  /** The value must equal one of these (deep equality: an object's key order does not matter). Enforced on receipt. */
  enum?: readonly unknown[];
  /** The value must equal this one (deep equality, like `enum`). Enforced on receipt. */
  const?: unknown;
  /** For an object: each property present must match the schema of its name. Enforced on receipt. */
  properties?: Readonly<Record<string, JsonSchema>>;
  /** For an object: these properties must be present (own properties). Enforced on receipt. */
  required?: readonly string[];
  /**
   * For an object: what a property matched by neither `properties` nor `patternProperties` may be (`false`: none is
   * allowed; a schema: each must match it). Enforced on receipt.
   */
  additionalProperties?: boolean | JsonSchema;
  /**
   * For an object: each property whose name matches a regular expression (JavaScript, Unicode mode, unanchored) must
   * match its schema. Enforced on receipt.
   */
  patternProperties?: Readonly<Record<string, JsonSchema>>;
  /** For an object: the fewest properties it may have. Enforced on receipt. */
  minProperties?: number;
  /** For an object: the most properties it may have. Enforced on receipt. */
  maxProperties?: number;
  /** For an array: every item must match this schema (the list form, for tuples, is refused). Enforced on receipt. */
  items?: JsonSchema;
  /** For an array: the fewest items it may have. Enforced on receipt. */
  minItems?: number;
  /** For an array: the most items it may have. Enforced on receipt. */
  maxItems?: number;
  /** For an array: when true, no two items may be equal (deep equality). Enforced on receipt. */
  uniqueItems?: boolean;
  /** For a string: the fewest characters it may have, counted in code points. Enforced on receipt. */
  minLength?: number;
  /** For a string: the most characters it may have, counted in code points. Enforced on receipt. */
  maxLength?: number;
  /** For a string: a regular expression (JavaScript, Unicode mode, unanchored) it must match. Enforced on receipt. */
  pattern?: string;
  /** For a number: the smallest value allowed (inclusive). Enforced on receipt. */
  minimum?: number;
  /** For a number: the largest value allowed (inclusive). Enforced on receipt. */
  maximum?: number;
  /**
   * For a number: the value must be greater than this (a number; draft-04's boolean form is refused). Enforced on
   * receipt.
   */
  exclusiveMinimum?: number;
  /** For a number: the value must be less than this (a number, like `exclusiveMinimum`). Enforced on receipt. */
  exclusiveMaximum?: number;
  /** For a number: the value divided by this (> 0) must be an integer. Enforced on receipt. */
  multipleOf?: number;
  /** The value must match every one of these schemas; each one's issues are reported. Enforced on receipt. */
  allOf?: readonly JsonSchema[];
  /** The value must match at least one of these schemas; one issue when it matches none. Enforced on receipt. */
  anyOf?: readonly JsonSchema[];
  /**
   * The value must match exactly one of these schemas; one issue when it matches none or several. Enforced on receipt.
   */
  oneOf?: readonly JsonSchema[];
  /** The value must not match this schema. Enforced on receipt. */
  not?: JsonSchema;
  /** The dialect's URI (draft-07, 2020-12...). An annotation: the subset's keywords mean the same in both. */
  $schema?: string;
  /** The schema's URI. An annotation: nothing resolves against it (`$ref` is outside the subset). */
  $id?: string;
  /** A comment for the schema's authors. An annotation. */
  $comment?: string;
  /** A short title for the value, shown in the AsyncAPI document. An annotation. */
  title?: string;
  /** What the value means, shown in the AsyncAPI document. An annotation. */
  description?: string;
  /** The value to assume when it is missing. An annotation: never filled into the payload. */
  default?: unknown;
  /** Example values, shown in the AsyncAPI document. An annotation: not checked against the schema. */
  examples?: readonly unknown[];
  /** Whether the value should no longer be used. An annotation: a deprecated value is accepted. */
  deprecated?: boolean;
  /** Whether the value is set by its owner only. An annotation. */
  readOnly?: boolean;
  /** Whether the value is never sent back. An annotation. */
  writeOnly?: boolean;
  /** For a string: its semantic format (`date-time`, `email`, `uuid`...). An annotation: not checked. */
  format?: string;
  /** For a string: the media type of what it holds (`application/json`...). An annotation: not checked. */
  contentMediaType?: string;
  /** For a string: how what it holds is encoded (`base64`...). An annotation: not checked. */
  contentEncoding?: string;
  [extension: `x-${string}`]: unknown;
}

/** One reason a value fails its schema: a message, and where in the value (object keys, array indexes). */
export interface PayloadIssue {
  /** What is wrong (`must be string`, `must have required property 'id'`, or the Standard Schema validator's words). */
  message: string;
  /** Where, from the payload's root: object keys and array indexes; empty for the payload itself. */
  path: Array<string | number>;
}

/** Checks a value, adding what is wrong to `issues` (up to their limit); true when it is valid. */
export type JsonSchemaCheck = (value: unknown, issues: IssueList, path: Array<string | number>) => boolean;

/** Issues collected up to a bound: a huge invalid payload must not make a huge log line or error reply. */
export class IssueList {
  readonly items: PayloadIssue[] = [];

  constructor(readonly limit = MAX_ISSUES) {}

  get full(): boolean {
    return this.items.length >= this.limit;
  }

  add(message: string, path: Array<string | number>): false {
    if (!this.full) this.items.push({ message, path: [...path] });
    return false;
  }
}

/** Most issues kept for one payload. */
export const MAX_ISSUES = 20;

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'format',
  'contentMediaType',
  'contentEncoding',
]);

const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'integer', 'string']);

/** Compiles a schema of the subset into a check; a keyword outside it is a ConfigError naming it and where it is. */
export function compileJsonSchema(schema: JsonSchema, field: string): JsonSchemaCheck {
  return compile(schema, field, '#');
}

function compile(schema: unknown, field: string, at: string): JsonSchemaCheck {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new ConfigError(field, `the schema at '${at}' must be an object`);
  }
  const s = schema as Record<string, unknown>;
  const checks: JsonSchemaCheck[] = [];
  const fail = (why: string): never => {
    throw new ConfigError(field, `${why} (at '${at}')`);
  };
  const number = (key: string): number | undefined => {
    const v = s[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) fail(`'${key}' must be a number`);
    return v as number | undefined;
  };
  const count = (key: string): number | undefined => {
    const v = number(key);
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) fail(`'${key}' must be an integer >= 0`);
    return v;
  };
  const schemas = (key: string): JsonSchemaCheck[] | undefined => {
    const v = s[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0) fail(`'${key}' must be a non-empty array of schemas`);
    return (v as unknown[]).map((sub, i) => compile(sub, field, `${at}/${key}/${i}`));
  };
  const schemaMap = (key: string): Array<[string, JsonSchemaCheck]> | undefined => {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`'${key}' must be an object of schemas`);
    return Object.entries(v as Record<string, unknown>).map(([k, sub]) => [
      k,
      compile(sub, field, `${at}/${key}/${pointerToken(k)}`),
    ]);
  };

  for (const key of Object.keys(s)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key) && !key.startsWith('x-')) {
      fail(
        `JSON Schema keyword '${key}' is outside the subset Warren enforces; pass a Standard Schema validator to use it`,
      );
    }
  }

  if (s.type !== undefined) {
    const types = typeof s.type === 'string' ? [s.type] : s.type;
    if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === 'string' && TYPES.has(t))) {
      fail(`'type' must be one of ${[...TYPES].join(', ')}, or a list of them`);
    }
    const list = types as string[];
    const expected = list.join(' or ');
    checks.push((v, issues, path) => list.some((t) => hasType(v, t)) || issues.add(`must be ${expected}`, path));
  }
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum) || s.enum.length === 0) fail("'enum' must be a non-empty array");
    const allowed = new Set((s.enum as unknown[]).map(canonical));
    checks.push(
      (v, issues, path) => allowed.has(canonical(v)) || issues.add('must be equal to one of the allowed values', path),
    );
  }
  if ('const' in s) {
    const expected = canonical(s.const);
    checks.push((v, issues, path) => canonical(v) === expected || issues.add('must be equal to the constant', path));
  }

  // Objects.
  const properties = schemaMap('properties');
  const patternProperties = schemaMap('patternProperties')?.map(([p, check]): [RegExp, JsonSchemaCheck] => [
    regex(p, fail),
    check,
  ]);
  const required = s.required;
  if (required !== undefined && (!Array.isArray(required) || !required.every((r) => typeof r === 'string'))) {
    fail("'required' must be an array of property names");
  }
  const additional = s.additionalProperties;
  let additionalCheck: JsonSchemaCheck | false | undefined;
  if (additional === false) additionalCheck = false;
  else if (additional !== undefined && additional !== true) {
    additionalCheck = compile(additional, field, `${at}/additionalProperties`);
  }
  const minProperties = count('minProperties');
  const maxProperties = count('maxProperties');
  const objectKeywords = [properties, patternProperties, required, additionalCheck, minProperties, maxProperties];
  if (objectKeywords.some((k) => k !== undefined)) {
    const known = new Map(properties);
    checks.push((v, issues, path) => {
      if (!isObject(v)) return true;
      let ok = true;
      for (const name of (required as string[] | undefined) ?? []) {
        if (!Object.prototype.hasOwnProperty.call(v, name))
          ok = issues.add(`must have required property '${name}'`, path);
      }
      const keys = Object.keys(v);
      if (minProperties !== undefined && keys.length < minProperties) {
        ok = issues.add(`must NOT have fewer than ${minProperties} properties`, path);
      }
      if (maxProperties !== undefined && keys.length > maxProperties) {
        ok = issues.add(`must NOT have more than ${maxProperties} properties`, path);
      }
      for (const key of keys) {
        if (issues.full) return false;
        const value = v[key];
        const own = known.get(key);
        let matched = own !== undefined;
        if (own) ok = own(value, issues, [...path, key]) && ok;
        for (const [pattern, check] of patternProperties ?? []) {
          if (!pattern.test(key)) continue;
          matched = true;
          ok = check(value, issues, [...path, key]) && ok;
        }
        if (matched || additionalCheck === undefined) continue;
        if (additionalCheck === false) ok = issues.add(`must NOT have additional property '${key}'`, path);
        else ok = additionalCheck(value, issues, [...path, key]) && ok;
      }
      return ok;
    });
  }

  // Arrays.
  if (s.items !== undefined && Array.isArray(s.items)) {
    fail("'items' as a list (tuple validation) is outside the subset Warren enforces; give one schema for every item");
  }
  const items = s.items === undefined ? undefined : compile(s.items, field, `${at}/items`);
  const minItems = count('minItems');
  const maxItems = count('maxItems');
  if (s.uniqueItems !== undefined && typeof s.uniqueItems !== 'boolean') fail("'uniqueItems' must be a boolean");
  const unique = s.uniqueItems === true;
  if (items || minItems !== undefined || maxItems !== undefined || unique) {
    checks.push((v, issues, path) => {
      if (!Array.isArray(v)) return true;
      let ok = true;
      if (minItems !== undefined && v.length < minItems) {
        ok = issues.add(`must NOT have fewer than ${minItems} items`, path);
      }
      if (maxItems !== undefined && v.length > maxItems)
        ok = issues.add(`must NOT have more than ${maxItems} items`, path);
      if (unique && new Set(v.map(canonical)).size !== v.length) ok = issues.add('must NOT have duplicate items', path);
      if (items) {
        for (let i = 0; i < v.length && !issues.full; i++) ok = items(v[i], issues, [...path, i]) && ok;
      }
      return ok;
    });
  }

  // Strings.
  const minLength = count('minLength');
  const maxLength = count('maxLength');
  if (s.pattern !== undefined && typeof s.pattern !== 'string') fail("'pattern' must be a string");
  const pattern = typeof s.pattern === 'string' ? regex(s.pattern, fail) : undefined;
  if (minLength !== undefined || maxLength !== undefined || pattern) {
    checks.push((v, issues, path) => {
      if (typeof v !== 'string') return true;
      let ok = true;
      const length = minLength !== undefined || maxLength !== undefined ? [...v].length : 0;
      if (minLength !== undefined && length < minLength) {
        ok = issues.add(`must NOT have fewer than ${minLength} characters`, path);
      }
      if (maxLength !== undefined && length > maxLength) {
        ok = issues.add(`must NOT have more than ${maxLength} characters`, path);
      }
      if (pattern && !pattern.test(v)) ok = issues.add(`must match pattern "${pattern.source}"`, path);
      return ok;
    });
  }

  // Numbers.
  const bounds: Array<[number | undefined, (v: number, b: number) => boolean, string]> = [
    [number('minimum'), (v, b) => v >= b, '>='],
    [number('maximum'), (v, b) => v <= b, '<='],
    [number('exclusiveMinimum'), (v, b) => v > b, '>'],
    [number('exclusiveMaximum'), (v, b) => v < b, '<'],
  ];
  const multipleOf = number('multipleOf');
  if (multipleOf !== undefined && multipleOf <= 0) fail("'multipleOf' must be > 0");
  if (bounds.some(([b]) => b !== undefined) || multipleOf !== undefined) {
    checks.push((v, issues, path) => {
      if (typeof v !== 'number') return true;
      let ok = true;
      for (const [bound, holds, op] of bounds) {
        if (bound !== undefined && !holds(v, bound)) ok = issues.add(`must be ${op} ${bound}`, path);
      }
      if (multipleOf !== undefined && !Number.isInteger(v / multipleOf)) {
        ok = issues.add(`must be a multiple of ${multipleOf}`, path);
      }
      return ok;
    });
  }

  // Combinators: the sub-schemas' own issues are reported for allOf; anyOf, oneOf and not report one issue each.
  const allOf = schemas('allOf');
  if (allOf) checks.push((v, issues, path) => allOf.map((c) => c(v, issues, path)).every(Boolean));
  const anyOf = schemas('anyOf');
  if (anyOf) {
    checks.push(
      (v, issues, path) =>
        anyOf.some((c) => c(v, new IssueList(1), path)) || issues.add('must match a schema in anyOf', path),
    );
  }
  const oneOf = schemas('oneOf');
  if (oneOf) {
    checks.push(
      (v, issues, path) =>
        oneOf.filter((c) => c(v, new IssueList(1), path)).length === 1 ||
        issues.add('must match exactly one schema in oneOf', path),
    );
  }
  const not = s.not === undefined ? undefined : compile(s.not, field, `${at}/not`);
  if (not) checks.push((v, issues, path) => !not(v, new IssueList(1), path) || issues.add('must NOT be valid', path));

  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0];
  return (v, issues, path) => {
    let ok = true;
    for (const check of checks) {
      if (issues.full) return false;
      ok = check(v, issues, path) && ok;
    }
    return ok;
  };
}

const KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'patternProperties',
  'minProperties',
  'maxProperties',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function hasType(v: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    default:
      return typeof v === 'string';
  }
}

function regex(source: string, fail: (why: string) => never): RegExp {
  try {
    return new RegExp(source, 'u');
  } catch (err) {
    return fail(`'${source}' is not a valid regular expression: ${(err as Error).message}`);
  }
}

/** A JSON Pointer token (RFC 6901). */
function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
