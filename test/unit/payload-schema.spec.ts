import Ajv from 'ajv';
import fc from 'fast-check';
import { z } from 'zod';
import { ConfigError } from '../../lib/amqp';
import { MAX_ISSUES, type JsonSchema } from '../../lib/nest/schema/json-schema-subset';
import { resolvePayloadSchema, type PayloadCheck, type StandardSchemaV1 } from '../../lib/nest/schema/payload-schema';
import type { HandlerRegistration } from '../../lib/nest/server/handler-routes';
import { configError } from '../support/config-error';
import { planRoutes, registration } from '../support/handler-plan';

/** Schemas that use every keyword of the subset, alone and together. */
const SCHEMAS: JsonSchema[] = [
  { type: 'string' },
  { type: ['integer', 'null'] },
  { type: 'number', minimum: 0, exclusiveMaximum: 10, multipleOf: 0.5 },
  { type: 'integer', exclusiveMinimum: -3, maximum: 3 },
  { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-zé]+$' },
  { enum: ['a', 1, null, { k: [1] }] },
  { const: { a: [1, 'x'] } },
  { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 3 },
  { type: 'array', uniqueItems: true },
  {
    type: 'object',
    required: ['id', 'tags'],
    properties: { id: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
    additionalProperties: false,
  },
  { type: 'object', patternProperties: { '^x-': { type: 'number' } }, additionalProperties: { type: 'string' } },
  { type: 'object', minProperties: 1, maxProperties: 2 },
  { allOf: [{ type: 'number' }, { minimum: 1 }] },
  { anyOf: [{ type: 'string' }, { type: 'number', minimum: 5 }] },
  { oneOf: [{ type: 'number' }, { type: 'integer' }] },
  { not: { type: 'object' } },
  { properties: { a: { type: 'string' } }, required: ['a'] },
  { title: 'annotated', description: 'd', examples: [1], default: 2, format: 'email', 'x-note': true },
];

const VALUES: unknown[] = [
  null,
  true,
  0,
  -3,
  2.5,
  3,
  7,
  10,
  'a',
  'ab',
  'abé',
  'abcde',
  'A1',
  [],
  [true],
  [true, false, true, false],
  [1, 1],
  [1, 2],
  [{ a: 1 }, { a: 1 }],
  {},
  { a: [1, 'x'] },
  { k: [1] },
  { id: 1, tags: ['x'] },
  { id: 1.5, tags: ['x', 2] },
  { id: 1, tags: [], more: 1 },
  { 'x-a': 1, b: 'y' },
  { 'x-a': 'no', b: 2 },
  { a: 'x' },
  { a: 1, b: 2, c: 3 },
];

// format is an annotation for Warren: Ajv is told the same.
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });

function check(schema: JsonSchema, value: unknown): PayloadCheck {
  return resolvePayloadSchema(schema, 'schema').check(value) as PayloadCheck;
}

describe('JSON Schema: the subset Warren enforces without a dependency', () => {
  it('agrees with Ajv on every schema of the subset, for a table of values', () => {
    for (const schema of SCHEMAS) {
      const expected = ajv.compile(schema);
      for (const value of VALUES) {
        const ok = check(schema, value).ok;
        if (ok !== expected(value)) throw new Error(`${JSON.stringify(schema)} on ${JSON.stringify(value)}: ${ok}`);
      }
    }
  });

  it('agrees with Ajv on random JSON values', () => {
    const compiled = SCHEMAS.map((s) => ({ s, ajv: ajv.compile(s) }));
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
        for (const { s, ajv: expected } of compiled) {
          let verdict: boolean;
          try {
            verdict = expected(value);
          } catch {
            // Ajv's deep equality (enum, const, uniqueItems) throws on keys such as "valueOf": null. Warren does not.
            expect(() => check(s, value)).not.toThrow();
            continue;
          }
          expect([s, check(s, value).ok]).toEqual([s, verdict]);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('says what is wrong and where: one issue per failed keyword, with the path into the payload', () => {
    const schema = SCHEMAS[9];
    expect(check(schema, { id: 1.5, tags: ['x', 2], more: true })).toEqual({
      ok: false,
      issues: [
        { message: 'must be integer', path: ['id'] },
        { message: 'must be string', path: ['tags', 1] },
        { message: "must NOT have additional property 'more'", path: [] },
      ],
    });
    expect(check(schema, { tags: [] })).toEqual({
      ok: false,
      issues: [{ message: "must have required property 'id'", path: [] }],
    });
    // Valid: the payload is handed on as it is.
    const payload = { id: 1, tags: ['x'] };
    expect(check(schema, payload)).toEqual({ ok: true, value: payload });
  });

  it(`keeps at most ${MAX_ISSUES} issues, however large the invalid payload`, () => {
    const result = check(
      { type: 'array', items: { type: 'string' } },
      Array.from({ length: 100_000 }, (_, i) => i),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.issues.length).toBe(MAX_ISSUES);
  });

  it('a keyword outside the subset is a ConfigError naming it and where it is: nothing is half-enforced', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ $ref: '#/definitions/a' }, /keyword '\$ref' is outside the subset .* \(at '#'\)/],
      [{ properties: { a: { if: { type: 'string' } } } }, /keyword 'if' .*\(at '#\/properties\/a'\)/],
      [{ items: [{ type: 'string' }] }, /tuple validation/],
      [{ type: 'text' }, /'type' must be one of/],
      [{ pattern: '(' }, /not a valid regular expression/],
      [{ anyOf: [] }, /'anyOf' must be a non-empty array/],
      [{ minLength: -1 }, /'minLength' must be an integer >= 0/],
      ['{"type":"string"}', /must be a JSON Schema object or a Standard Schema/],
    ];
    for (const [schema, message] of cases) {
      const err = configError(() => resolvePayloadSchema(schema, "handler 'x'.schema"));
      expect(err.field).toBe("handler 'x'.schema");
      expect(err.message).toMatch(message);
    }
  });
});

describe('Standard Schema validators', () => {
  it('zod: its issues (message and path) and its output value (defaults applied)', async () => {
    const schema = resolvePayloadSchema(z.object({ id: z.number(), tags: z.array(z.string()).default([]) }), 'schema');
    expect(await schema.check({ id: 1 })).toEqual({ ok: true, value: { id: 1, tags: [] } });
    expect(await schema.check({ id: 'one', tags: [2] })).toEqual({
      ok: false,
      issues: [
        { message: expect.stringContaining('expected number'), path: ['id'] },
        { message: expect.stringContaining('expected string'), path: ['tags', 0] },
      ],
    });
    expect(schema.describe()).toMatchObject({ type: 'object', required: ['id'] });
  });

  it('an asynchronous validator is awaited; one that throws or rejects gives one issue naming its vendor', async () => {
    const validator = (validate: (value: unknown) => unknown): StandardSchemaV1 =>
      ({ '~standard': { version: 1, vendor: 'acme', validate } }) as StandardSchemaV1;
    const async = resolvePayloadSchema(
      validator(async (value) => (value === 'ok' ? { value: 'OK' } : { issues: [{ message: 'not ok' }] })),
      'schema',
    );
    expect(await async.check('ok')).toEqual({ ok: true, value: 'OK' });
    expect(await async.check('no')).toEqual({ ok: false, issues: [{ message: 'not ok', path: [] }] });
    const throwing = resolvePayloadSchema(
      validator(() => {
        throw new Error('boom');
      }),
      'schema',
    );
    expect(throwing.check(1)).toEqual({
      ok: false,
      issues: [{ message: 'the acme validator threw: boom', path: [] }],
    });
    const rejecting = resolvePayloadSchema(
      validator(() => Promise.reject(new Error('later'))),
      'schema',
    );
    expect(await rejecting.check(1)).toEqual({
      ok: false,
      issues: [{ message: 'the acme validator threw: later', path: [] }],
    });
    // Without Standard JSON Schema, the document shows no payload schema.
    expect(async.describe()).toBeUndefined();
  });

  it('path segments given as { key } objects and symbols become plain keys', () => {
    const schema = resolvePayloadSchema(
      {
        '~standard': {
          version: 1,
          vendor: 'acme',
          validate: () => ({ issues: [{ message: 'bad', path: [{ key: 'a' }, 0, Symbol('s')] }] }),
        },
      },
      'schema',
    );
    expect(schema.check(null)).toEqual({ ok: false, issues: [{ message: 'bad', path: ['a', 0, 'Symbol(s)'] }] });
  });

  it("a '~standard' without version 1 and a validate function is a ConfigError", () => {
    const err = configError(() => resolvePayloadSchema({ '~standard': { version: 2 } }, 'schema'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/version 1 and a validate function/);
  });
});

describe('a handler schema at start-up', () => {
  const plan = (registrations: HandlerRegistration[]) => planRoutes(registrations);

  it('event handlers chained on one pattern of one queue share one schema: different ones are a ConfigError', () => {
    const order = { type: 'object' };
    const placed = (schema?: JsonSchema): HandlerRegistration =>
      registration('order.placed', { queue: 'orders', schema });
    expect(() => plan([placed(order), placed(order)])).not.toThrow();
    const err = configError(() => plan([placed(order), placed({ type: 'object' })]));
    expect(err.field).toBe("handler 'order.placed'.schema");
    expect(err.message).toMatch(/must give the same schema \(or none\)/);
    expect(configError(() => plan([placed(), placed(order)])).field).toBe("handler 'order.placed'.schema");
  });
});
