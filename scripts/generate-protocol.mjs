#!/usr/bin/env node
// Generates lib/amqp/protocol/spec.generated.ts from the RabbitMQ-extended AMQP 0-9-1 spec XML
// that Debian's `amqp-specs` package ships. Nobody edits the output by hand: change this script
// and run `npm run generate`. `--stdout` prints instead of writing (the freshness test uses it).
//
// The XML lacks RabbitMQ extensions that the broker speaks (connection.blocked, connection.unblocked,
// connection.update-secret, and reply code 312 NO_ROUTE of basic.return); they are added below from
// RabbitMQ's own codegen extension, so the generated tables cover everything the broker can send.
//
// The output is the one source of protocol numbers: frame types and frame-end, reply codes, class and
// method ids, property flags, the protocol version and port. Hand-written code imports them from here
// and never copies a number out of it.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const DEFAULT_XML = '/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml';
const OUT = join(here, '..', 'lib', 'amqp', 'protocol', 'spec.generated.ts');

const args = process.argv.slice(2);
const toStdout = args.includes('--stdout');
const xmlPath = args.find((a) => !a.startsWith('--')) ?? process.env.AMQP_SPEC_XML ?? DEFAULT_XML;

/** Minimal attribute reader: the spec XML is regular and machine-written. */
function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([\w-]+)="([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}

function parseSpec(xml) {
  const root = attrs(/<amqp\s[^>]*>/.exec(xml)?.[0] ?? '');
  const version = { major: Number(root.major), minor: Number(root.minor), revision: Number(root.revision) };
  const port = Number(root.port);
  const constants = [...xml.matchAll(/<constant\s[^>]*\/>/g)].map((m) => attrs(m[0]));
  const domains = new Map();
  for (const m of xml.matchAll(/<domain\s[^>]*?\/?>/g)) {
    const a = attrs(m[0]);
    domains.set(a.name, a.type);
  }
  const classes = [];
  for (const cm of xml.matchAll(/<class\s([^>]*)>([\s\S]*?)<\/class>/g)) {
    const ca = attrs(cm[1]);
    const body = cm[2];
    const methods = [];
    for (const mm of body.matchAll(/<method\s([^>]*?)(?:\/>|>([\s\S]*?)<\/method>)/g)) {
      const ma = attrs(mm[1]);
      const mbody = mm[2] ?? '';
      const fields = [...mbody.matchAll(/<field\s[^>]*?\/?>/g)].map((f) => attrs(f[0]));
      const responses = [...mbody.matchAll(/<response\s[^>]*?\/?>/g)].map((r) => attrs(r[0]).name);
      methods.push({
        name: ma.name,
        index: Number(ma.index),
        synchronous: ma.synchronous === '1',
        content: ma.content === '1',
        responses,
        fields: fields.map((f) => ({
          name: f.name,
          type: f.type ?? domains.get(f.domain),
          reserved: f.reserved === '1',
        })),
      });
    }
    // Class-level <field> elements (outside methods) are the content properties.
    const propsXml = body.replace(/<method[\s\S]*?<\/method>/g, '').replace(/<method[^>]*\/>/g, '');
    const properties = [...propsXml.matchAll(/<field\s[^>]*?\/?>/g)].map((f) => {
      const a = attrs(f[0]);
      return { name: a.name, type: a.type ?? domains.get(a.domain) };
    });
    classes.push({ name: ca.name, index: Number(ca.index), methods, properties });
  }
  return { version, port, constants, classes };
}

/** RabbitMQ extensions missing from the stripped XML. */
function addRabbitExtensions(spec) {
  // 312 NO_ROUTE: what RabbitMQ's basic.return says of an unroutable mandatory publish (in RabbitMQ's codegen
  // constants, not in the XML). Kept in value order.
  if (!spec.constants.some((c) => c.name === 'no-route')) {
    const at = spec.constants.findIndex((c) => c.class && Number(c.value) > 312);
    spec.constants.splice(at, 0, { name: 'no-route', value: '312', class: 'soft-error' });
  }
  const connection = spec.classes.find((c) => c.name === 'connection');
  const has = (n) => connection.methods.some((m) => m.name === n);
  const extra = [
    {
      name: 'blocked',
      index: 60,
      synchronous: false,
      content: false,
      responses: [],
      fields: [{ name: 'reason', type: 'shortstr', reserved: false }],
    },
    { name: 'unblocked', index: 61, synchronous: false, content: false, responses: [], fields: [] },
    {
      name: 'update-secret',
      index: 70,
      synchronous: true,
      content: false,
      responses: ['update-secret-ok'],
      fields: [
        { name: 'new-secret', type: 'longstr', reserved: false },
        { name: 'reason', type: 'shortstr', reserved: false },
      ],
    },
    { name: 'update-secret-ok', index: 71, synchronous: true, content: false, responses: [], fields: [] },
  ];
  for (const m of extra) if (!has(m.name)) connection.methods.push(m);
}

const camel = (s) => s.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const pascal = (s) => camel(s).replace(/^./, (c) => c.toUpperCase());
const upper = (s) => s.replace(/-/g, '_').toUpperCase();
/** The spec calls the 14th basic property `reserved`; RabbitMQ and every client call it cluster-id. */
const propertyName = (n) => (n === 'reserved' ? 'clusterId' : camel(n));

/**
 * What each reply code means (after the spec's own `<doc>` text, which the stripped XML leaves out, and what RabbitMQ
 * sends it for), for the doc comment of its `ReplyCode` member. A code the XML adds without an entry here fails the
 * generator, so no member goes undocumented. Whether a code is hard or soft comes from the XML, not from here.
 */
const REPLY_CODE_DOCS = {
  'reply-success': 'The method completed: the code of a normal `connection.close` or `channel.close`.',
  'content-too-large':
    'The content was larger than the server could accept at the present time; the client may retry later.',
  'no-route':
    "RabbitMQ's `basic.return` code for a `mandatory` message that no queue was bound to take (an `UnroutableError`).",
  'no-consumers':
    'The `basic.return` code for an `immediate` message that no consumer could take at once (RabbitMQ does not support `immediate`).',
  'connection-forced':
    'An operator or the broker closed the connection (`rabbitmqctl close_connection`, a node shutting down); the client may reconnect later.',
  'invalid-path':
    'The virtual host does not exist, in the spec; RabbitMQ answers a missing or refused virtual host with 530 NOT_ALLOWED.',
  'access-refused':
    'The user may not do this: a permission (configure, write or read) it lacks, a reserved `amq.` name, or, during the handshake, its login refused (which closes the connection).',
  'not-found':
    'The entity does not exist: declaring passively, binding, consuming or publishing to a missing queue or exchange.',
  'resource-locked':
    'Another connection holds the entity: an exclusive queue declared, consumed or deleted from another connection.',
  'precondition-failed':
    'A precondition of the method failed: a redeclaration with other arguments or flags, or an unknown delivery tag.',
  'frame-error': 'The peer sent a malformed frame that could not be decoded.',
  'syntax-error': 'The peer sent a frame with illegal values in one or more of its fields.',
  'command-invalid':
    'The client sent an invalid sequence of frames, attempting an operation the server considers invalid.',
  'channel-error': 'The client used a channel that was not correctly opened.',
  'unexpected-frame':
    'The peer sent a frame that was not expected, usually in the middle of a content header and body.',
  'resource-error': 'The server lacked the resources to complete the method.',
  'not-allowed':
    'The method is prohibited by the server: security settings (such as access to the virtual host refused) or other criteria.',
  'not-implemented': 'The method or flag is not implemented by the server (RabbitMQ: `immediate` publishes).',
  'internal-error': 'The server could not complete the method because of an internal error.',
};

/** The doc comment of one `ReplyCode` member: its meaning, then what closes (hard and soft codes). */
function replyCodeDoc(c) {
  const text = REPLY_CODE_DOCS[c.name];
  if (text === undefined) throw new Error(`no description of reply code ${c.name} (${c.value}) in REPLY_CODE_DOCS`);
  if (c.class === 'hard-error') return `${text} A hard error: it closes the connection.`;
  if (c.class === 'soft-error' && !['no-route', 'no-consumers'].includes(c.name)) {
    return `${text} A soft error: on an open channel it closes that channel only.`;
  }
  return text;
}

/** A doc comment at `indent`, on one line when it fits in 120 columns, else wrapped at word boundaries. */
function docComment(indent, text) {
  const single = `${indent}/** ${text} */`;
  if (single.length <= 120) return [single];
  const lines = [`${indent}/**`];
  let line = `${indent} *`;
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > 120) {
      lines.push(line);
      line = `${indent} *`;
    }
    line += ` ${word}`;
  }
  lines.push(line, `${indent} */`);
  return lines;
}

const TS_TYPE = {
  octet: 'number',
  short: 'number',
  long: 'number',
  longlong: 'number',
  shortstr: 'string',
  longstr: 'string',
  bit: 'boolean',
  table: 'FieldTable',
  timestamp: 'Date',
};

function emitEncoder(cls, m, typeName) {
  const lines = [];
  const argName = m.fields.some((f) => !f.reserved) ? 'a' : '_a';
  lines.push(`export function encode${typeName}(w: Writer, ${argName}: ${typeName}): void {`);
  lines.push(`  w.u16(${cls.index});`);
  lines.push(`  w.u16(${m.index});`);
  let bits = [];
  const flushBits = () => {
    if (bits.length === 0) return;
    const expr = bits.map((b, i) => (b === null ? null : `(${b} ? ${1 << i} : 0)`)).filter(Boolean);
    lines.push(`  w.u8(${expr.length ? expr.join(' | ') : '0'});`);
    bits = [];
  };
  for (const f of m.fields) {
    const key = camel(f.name);
    const value = f.reserved ? null : `a.${key}`;
    if (f.type === 'bit') {
      bits.push(value === null ? null : `${value}`);
      if (bits.length === 8) flushBits();
      continue;
    }
    flushBits();
    const label = `'${cls.name}.${m.name}.${key}'`;
    switch (f.type) {
      case 'octet':
        lines.push(`  w.u8(${value ?? '0'});`);
        break;
      case 'short':
        lines.push(`  w.u16(${value ?? '0'});`);
        break;
      case 'long':
        lines.push(`  w.u32(${value ?? '0'});`);
        break;
      case 'longlong':
        lines.push(`  w.u64(${value ?? '0'});`);
        break;
      case 'shortstr':
        lines.push(value === null ? '  w.u8(0);' : `  w.shortstr(${value}, ${label});`);
        break;
      case 'longstr':
        lines.push(value === null ? '  w.u32(0);' : `  w.longstr(${value}, ${label});`);
        break;
      case 'table':
        lines.push(`  w.table(${value ?? 'EMPTY_TABLE'}, ${label});`);
        break;
      case 'timestamp':
        lines.push(`  w.timestamp(${value});`);
        break;
      default:
        throw new Error(`unknown field type ${f.type}`);
    }
  }
  flushBits();
  lines.push('}');
  return lines.join('\n');
}

function emitDecoder(cls, m, typeName) {
  const lines = [];
  const realFields = m.fields.filter((f) => !f.reserved);
  const readerName = m.fields.length ? 'r' : '_r';
  lines.push(`export function decode${typeName}(${readerName}: Reader): ${typeName} {`);
  let bitIndex = 0;
  let bitVar = 0;
  const assigns = [];
  for (const f of m.fields) {
    const key = camel(f.name);
    if (f.type !== 'bit') bitIndex = 0;
    let expr;
    switch (f.type) {
      case 'bit':
        if (bitIndex === 0) {
          bitVar++;
          lines.push(`  const bits${bitVar} = r.u8();`);
        }
        expr = `(bits${bitVar} & ${1 << bitIndex}) !== 0`;
        bitIndex = (bitIndex + 1) % 8;
        break;
      case 'octet':
        expr = 'r.u8()';
        break;
      case 'short':
        expr = 'r.u16()';
        break;
      case 'long':
        expr = 'r.u32()';
        break;
      case 'longlong':
        expr = 'r.u64()';
        break;
      case 'shortstr':
        expr = 'r.shortstr()';
        break;
      case 'longstr':
        expr = 'r.longstr()';
        break;
      case 'table':
        expr = 'r.table()';
        break;
      case 'timestamp':
        expr = 'r.timestamp()';
        break;
      default:
        throw new Error(`unknown field type ${f.type}`);
    }
    if (f.reserved) {
      if (f.type !== 'bit') lines.push(`  ${expr};`);
    } else if (f.type === 'bit') {
      assigns.push(`${key}: ${expr}`);
    } else {
      // Locals are prefixed: a field may be named `arguments`.
      lines.push(`  const f_${key} = ${expr};`);
      assigns.push(`${key}: f_${key}`);
    }
  }
  lines.push(realFields.length ? `  return { ${assigns.join(', ')} };` : '  return {};');
  lines.push('}');
  return lines.join('\n');
}

function generate(spec, sourceName) {
  const out = [];
  out.push('// AUTO-GENERATED by scripts/generate-protocol.mjs from ' + sourceName + ' — do not edit by hand.');
  out.push('// Run `npm run generate` after changing the generator.');
  out.push('/* eslint-disable */');
  out.push("import type { FieldTable } from './field-table';");
  out.push("import type { Reader } from './reader';");
  out.push("import type { Writer } from './writer';");
  out.push('');
  out.push('const EMPTY_TABLE: FieldTable = Object.freeze({}) as FieldTable;');
  out.push('');
  const { major, minor, revision } = spec.version;
  out.push(`/** The protocol version this file describes: ${major}-${minor}-${revision}. */`);
  out.push(`export const PROTOCOL_VERSION = { major: ${major}, minor: ${minor}, revision: ${revision} } as const;`);
  out.push('');
  out.push('/** The IANA port of the protocol (plain TCP), from the spec. */');
  out.push(`export const AMQP_PORT = ${spec.port};`);
  out.push('');
  out.push('/** Every constant of the spec by name: frame types and sizes, reply-success and the reply codes. */');
  out.push('export const Constants = {');
  for (const c of spec.constants) out.push(`  ${upper(c.name)}: ${c.value},`);
  out.push('} as const;');
  out.push('');
  out.push('/**');
  out.push(
    " * AMQP reply codes by name: `reply-success` and every error code of the spec (plus RabbitMQ's 312 NO_ROUTE), as",
  );
  out.push(' * carried by connection.close, channel.close and basic.return.');
  out.push(' */');
  out.push('export const ReplyCode = {');
  for (const c of spec.constants.filter((c) => c.class || c.name === 'reply-success')) {
    out.push(...docComment('  ', `${c.value}: ${replyCodeDoc(c)}`));
    out.push(`  ${upper(c.name)}: ${c.value},`);
  }
  out.push('} as const;');
  out.push('');
  out.push('/** Reply codes by name, with whether they are connection-level (hard) errors. */');
  out.push('export const ReplyCodes: ReadonlyArray<{ code: number; name: string; hard: boolean }> = [');
  for (const c of spec.constants.filter((c) => c.class)) {
    out.push(`  { code: ${c.value}, name: '${upper(c.name)}', hard: ${c.class === 'hard-error'} },`);
  }
  out.push('];');
  out.push('');
  out.push('/** Class ids by class name. */');
  out.push('export const ClassId = {');
  for (const cls of spec.classes) out.push(`  ${upper(cls.name)}: ${cls.index},`);
  out.push('} as const;');
  out.push('');
  out.push('/** Method ids within their class (the second u16 of a method frame), by `CLASS_METHOD` name. */');
  out.push('export const MethodId = {');
  for (const cls of spec.classes) {
    for (const m of cls.methods) out.push(`  ${upper(cls.name)}_${upper(m.name)}: ${m.index},`);
  }
  out.push('} as const;');
  out.push('');

  const methodEntries = [];
  for (const cls of spec.classes) {
    out.push(`// ---- class ${cls.name} (${cls.index}) ----`);
    out.push('');
    for (const m of cls.methods) {
      const typeName = pascal(cls.name) + pascal(m.name);
      const constName = `${upper(cls.name)}_${upper(m.name)}`;
      out.push(
        `/** ${cls.name}.${m.name} (${cls.index}/${m.index})${m.synchronous ? ', synchronous' : ''}${m.content ? ', carries content' : ''}. */`,
      );
      const real = m.fields.filter((f) => !f.reserved);
      if (real.length === 0) {
        out.push(`export type ${typeName} = Record<string, never>;`);
      } else {
        out.push(`export interface ${typeName} {`);
        for (const f of real) out.push(`  ${camel(f.name)}: ${TS_TYPE[f.type]};`);
        out.push('}');
      }
      out.push(
        `/** The id of ${cls.name}.${m.name}: class id << 16 | method id, as the method frame's first four bytes read. */`,
      );
      out.push(`export const ${constName} = ${(cls.index << 16) | m.index};`);
      out.push(
        `/** Writes ${cls.name}.${m.name}'s method payload (class and method ids, then the fields) at the writer's position. */`,
      );
      out.push(emitEncoder(cls, m, typeName));
      out.push(`/** Reads ${cls.name}.${m.name}'s fields from a method payload, after its class and method ids. */`);
      out.push(emitDecoder(cls, m, typeName));
      out.push('');
      methodEntries.push({ cls, m, typeName, constName });
    }
  }

  out.push('/** Everything known about one method: ids, name, fields, encoder and decoder. */');
  out.push('export interface MethodSpec {');
  out.push('  id: number;');
  out.push('  classId: number;');
  out.push('  methodId: number;');
  out.push('  name: string;');
  out.push('  synchronous: boolean;');
  out.push('  hasContent: boolean;');
  out.push('  /** Names of the methods that answer this one (empty for asynchronous methods). */');
  out.push('  responses: readonly string[];');
  out.push('  fields: ReadonlyArray<{ name: string; type: string; reserved: boolean }>;');
  out.push('  encode(w: Writer, args: never): void;');
  out.push('  decode(r: Reader): object;');
  out.push('}');
  out.push('');
  out.push('/** Every method of the spec (with the RabbitMQ extensions), in class and method order. */');
  out.push('export const METHODS: readonly MethodSpec[] = [');
  for (const { cls, m, typeName, constName } of methodEntries) {
    const fields = m.fields
      .map((f) => `{ name: '${camel(f.name)}', type: '${f.type}', reserved: ${f.reserved} }`)
      .join(', ');
    const responses = m.responses.map((r) => `'${cls.name}.${r}'`).join(', ');
    out.push(
      `  { id: ${constName}, classId: ${cls.index}, methodId: ${m.index}, name: '${cls.name}.${m.name}', synchronous: ${m.synchronous}, hasContent: ${m.content}, responses: [${responses}], fields: [${fields}], encode: encode${typeName} as (w: Writer, args: never) => void, decode: decode${typeName} },`,
    );
  }
  out.push('];');
  out.push('');
  out.push('/** Method specs keyed by `classId << 16 | methodId`. */');
  out.push('export const METHODS_BY_ID: ReadonlyMap<number, MethodSpec> = new Map(METHODS.map((m) => [m.id, m]));');
  out.push('');
  out.push('/** Method argument types keyed by `class.method` name. */');
  out.push('export interface MethodArgs {');
  for (const { cls, m, typeName } of methodEntries) out.push(`  '${cls.name}.${m.name}': ${typeName};`);
  out.push('}');
  out.push('/** A method by its `class.method` name, e.g. `basic.publish`. */');
  out.push('export type MethodName = keyof MethodArgs;');
  out.push('');

  const basic = spec.classes.find((c) => c.name === 'basic');
  out.push('/** The 14 basic content properties, in flag order (bit 15 first). */');
  out.push('export const BASIC_PROPERTIES: ReadonlyArray<{ name: string; type: string; flag: number }> = [');
  basic.properties.forEach((p, i) => {
    out.push(`  { name: '${propertyName(p.name)}', type: '${p.type}', flag: 0x${(1 << (15 - i)).toString(16)} },`);
  });
  out.push('];');
  out.push('');
  out.push(
    "/** The flag bit of each basic content property in a content header's property-flags word, by property. */",
  );
  out.push('export const BasicPropertyFlag = {');
  basic.properties.forEach((p, i) => {
    out.push(`  ${upper(propertyName(p.name).replace(/[A-Z]/g, (c) => '-' + c))}: 0x${(1 << (15 - i)).toString(16)},`);
  });
  out.push('} as const;');
  out.push('');
  return out.join('\n') + '\n';
}

async function format(source) {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(OUT)) ?? {};
    return await prettier.format(source, { ...config, filepath: OUT });
  } catch (err) {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND') return source;
    throw err;
  }
}

const xml = readFileSync(xmlPath, 'utf8');
const spec = parseSpec(xml);
addRabbitExtensions(spec);
const source = await format(generate(spec, 'amqp0-9-1.stripped.extended.xml'));
if (toStdout) process.stdout.write(source);
else {
  writeFileSync(OUT, source);
  console.error(`wrote ${OUT}`);
}
