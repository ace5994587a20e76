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
 * Annotations are accepted and not enforced: `$schema`, `$id`, `$comment`, `title`, `description`, `default`,
 * `examples`, `deprecated`, `readOnly`, `writeOnly`, `format`, `contentMediaType`, `contentEncoding`, and `x-`
 * extensions. Any other keyword (`$ref`, `if`, tuple `items`...) is a ConfigError at start-up: a schema is never
 * half-enforced. For the whole of JSON Schema, pass a Standard Schema validator (ajv wrapped in `~standard`, zod...).
 */
export interface JsonSchema {
  /** A type name or several (`string`, not a union of literals, so that a schema imported from a .json file fits). */
  type?: string | readonly string[];
  enum?: readonly unknown[];
  const?: unknown;
  properties?: Readonly<Record<string, JsonSchema>>;
  required?: readonly string[];
  additionalProperties?: boolean | JsonSchema;
  patternProperties?: Readonly<Record<string, JsonSchema>>;
  minProperties?: number;
  maxProperties?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  allOf?: readonly JsonSchema[];
  anyOf?: readonly JsonSchema[];
  oneOf?: readonly JsonSchema[];
  not?: JsonSchema;
  $schema?: string;
  $id?: string;
  $comment?: string;
  title?: string;
  description?: string;
  default?: unknown;
  examples?: readonly unknown[];
  deprecated?: boolean;
  readOnly?: boolean;
  writeOnly?: boolean;
  format?: string;
  contentMediaType?: string;
  contentEncoding?: string;
  [extension: `x-${string}`]: unknown;
}

/** One reason a value fails its schema: a message, and where in the value (object keys, array indexes). */
export interface PayloadIssue {
  message: string;
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
