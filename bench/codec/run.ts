/**
 * Codec micro-benchmark: nestjs-warren's AMQP 0-9-1 codec against amqplib's, side by side, no broker.
 *
 *   node -r @swc-node/register bench/codec/run.ts            (from the repo root; part of `npm run bench`)
 *   ... bench/codec/run.ts --quick                           (shorter rounds, for a smoke run)
 *
 * Cases
 *   encode: basic.publish + content header + one 256-byte body frame, as one buffer ready for the socket
 *           — ours: FrameEncoder.publish(); amqplib: exactly Connection#sendMessage's single-chunk path
 *           (defs.encodeMethod + defs.encodeProperties + frame.makeBodyFrame copied into one buffer).
 *   parse:  one socket chunk holding basic.deliver + content header + 256-byte body → (method fields,
 *           properties, body) — ours: FrameParser → decodeMethod → ContentAssembler; amqplib: exactly
 *           Connection#recvFrame (parseFrame/decodeFrame over `rest`, including its Buffer.concat of
 *           each incoming chunk) feeding a copy of Channel's acceptDeliveryOrReturn/acceptMessage.
 *   Each with usual properties (contentType, deliveryMode, messageId) and without / with a 5-entry
 *   headers table. amqplib decodes headers eagerly; ours keeps them raw until `properties.headers` is
 *   first read, so ours is reported twice: headers not read, and headers read (decoded) on every message.
 *
 * Throughput: per case, each implementation is warmed up, then run in ROUNDS interleaved rounds
 * (ours, amqplib, ours, ...) of ROUND_MS each, with a full gc() before every round so one side's
 * garbage is never collected on the other side's clock; the median ops/s is reported.
 *
 * Allocation (bytes/op): the process runs with --expose-gc and a large young generation. For a sample,
 * gc() twice, read heapUsed + arrayBuffers (process.memoryUsage), run N ops, read again; a v8.GCProfiler
 * spans the window and a sample is discarded (and retried with a smaller N) if any GC ran inside it, so
 * the growth is exactly what was allocated: JS heap objects (strings, result objects, Buffer views) plus
 * ArrayBuffer backing stores (Buffer.alloc, and Buffer.allocUnsafe's 8 KiB pool slabs amortised over
 * the ops that carved them). The same measurement of an empty op is subtracted. Median of ALLOC_SAMPLES.
 * Why not v8 "total allocated" counters: Node exposes none; heapUsed deltas are exact as long as no GC
 * runs in the window, which the profiler proves for every sample kept.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { ContentAssembler, type AssembledContent } from '../../lib/amqp/protocol/content-assembler';
import { FRAME_BODY, FRAME_HEADER, FRAME_METHOD, FrameParser } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod, type DecodedMethod } from '../../lib/amqp/protocol/methods';
import type { MessageProperties } from '../../lib/amqp/protocol/properties';
import type { FieldTable } from '../../lib/amqp/protocol/field-table';

// ---------------------------------------------------------------------------------------------------
// amqplib internals, loaded by absolute path (they are not in its package "exports").

interface AmqplibFrame {
  type: number;
  channel: number;
  size: number;
  payload: Buffer;
  rest: Buffer;
}
interface AmqplibDecoded {
  id?: number;
  channel: number;
  size?: number;
  fields?: Record<string, unknown>;
  content?: Buffer;
}
interface AmqplibDefs {
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
  BasicPublish: number;
  BasicDeliver: number;
  BasicProperties: number;
  FRAME_OVERHEAD: number;
}
interface AmqplibFrameModule {
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
  parseFrame(bin: Buffer, max: number): AmqplibFrame | false;
  decodeFrame(frame: AmqplibFrame): AmqplibDecoded;
}

const ROOT = path.resolve(__dirname, '..', '..');
const amqplibDir = path.join(ROOT, 'node_modules', 'amqplib');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const defs = require(path.join(amqplibDir, 'lib', 'defs.js')) as AmqplibDefs;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const amqpFrame = require(path.join(amqplibDir, 'lib', 'frame.js')) as AmqplibFrameModule;
const amqplibVersion = (JSON.parse(fs.readFileSync(path.join(amqplibDir, 'package.json'), 'utf8')) as { version: string })
  .version;

// ---------------------------------------------------------------------------------------------------
// Settings

const QUICK = process.argv.includes('--quick');
const WARMUP_MS = QUICK ? 150 : 400;
const ROUNDS = QUICK ? 3 : 7;
const ROUND_MS = QUICK ? 80 : 200;
const ALLOC_SAMPLES = QUICK ? 3 : 5;
const ALLOC_OPS = 20_000;
const BATCH = 256;
const FRAME_MAX = 131072;
const CHANNEL = 1;

// ---------------------------------------------------------------------------------------------------
// Fixtures

const BODY = Buffer.alloc(256, 0x61);
const EXCHANGE = 'orders';
const ROUTING_KEY = 'orders.created.eu-west';
const CONSUMER_TAG = 'amq.ctag-4sW1pX3nR7v9QbZ2kLm0Jg';

const HEADERS: FieldTable = {
  'x-trace-id': '4bf92f3577b34da6a3ce929d0e0e4736',
  'x-tenant': 'acme-corp',
  'x-retry-count': 3,
  'x-source': 'checkout-service',
  'x-sequence': 1048576,
};
const BASE_PROPS = {
  contentType: 'application/json',
  deliveryMode: 2,
  messageId: '0f8fad5b-d9cb-469f-a165-70867728950e',
};
const PROPS_PLAIN: MessageProperties = { ...BASE_PROPS };
const PROPS_HEADERS: MessageProperties = { ...BASE_PROPS, headers: HEADERS };

/** One chunk: basic.deliver + content header + body frame, built with amqplib's encoder (neutral input). */
function deliverChunk(props: MessageProperties): Buffer {
  const m = defs.encodeMethod(defs.BasicDeliver, CHANNEL, {
    consumerTag: CONSUMER_TAG,
    deliveryTag: 123456,
    redelivered: false,
    exchange: EXCHANGE,
    routingKey: ROUTING_KEY,
  });
  const h = defs.encodeProperties(defs.BasicProperties, CHANNEL, BODY.length, props as Record<string, unknown>);
  return Buffer.concat([m, h, amqpFrame.makeBodyFrame(CHANNEL, BODY)]);
}

// ---------------------------------------------------------------------------------------------------
// Implementations under test. Each op returns its result so nothing can be optimised away.

type Op = () => unknown;

function oursEncode(props: MessageProperties): Op {
  const enc = new FrameEncoder(FRAME_MAX);
  return () => enc.publish(CHANNEL, EXCHANGE, ROUTING_KEY, false, false, props, BODY);
}

function amqplibEncode(props: MessageProperties): Op {
  const SINGLE_CHUNK_THRESHOLD = 2048;
  const FRAME_OVERHEAD = defs.FRAME_OVERHEAD;
  // The fields object amqplib's Args.publish builds for Channel#publish.
  const fields = { exchange: EXCHANGE, routingKey: ROUTING_KEY, mandatory: false, immediate: false, ticket: 0 };
  const p = props as Record<string, unknown>;
  // Connection#sendMessage, single-chunk branch (taken for every message below 2 KiB).
  return () => {
    const content = BODY;
    const mframe = defs.encodeMethod(defs.BasicPublish, CHANNEL, fields);
    const pframe = defs.encodeProperties(defs.BasicProperties, CHANNEL, content.length, p);
    const methodHeaderLen = mframe.length + pframe.length;
    const bodyLen = content.length > 0 ? content.length + FRAME_OVERHEAD : 0;
    const allLen = methodHeaderLen + bodyLen;
    if (allLen >= SINGLE_CHUNK_THRESHOLD) throw new Error('fixture too large for the single-chunk path');
    const all = Buffer.allocUnsafe(allLen);
    let offset = mframe.copy(all, 0);
    offset += pframe.copy(all, offset);
    if (bodyLen > 0) amqpFrame.makeBodyFrame(CHANNEL, content).copy(all, offset);
    return all;
  };
}

function oursParse(chunk: Buffer, readHeaders: boolean): Op {
  const assembler = new ContentAssembler<DecodedMethod>(FRAME_MAX * 64);
  let done: AssembledContent<DecodedMethod> | null = null;
  const parser = new FrameParser((type, _channel, payload) => {
    if (type === FRAME_METHOD) assembler.start(decodeMethod(payload));
    else if (type === FRAME_HEADER) done = assembler.header(payload);
    else if (type === FRAME_BODY) done = assembler.bodyFrame(payload);
  }, FRAME_MAX);
  return () => {
    parser.push(chunk);
    const msg = done as AssembledContent<DecodedMethod> | null;
    if (msg === null) throw new Error('no message assembled');
    done = null;
    if (readHeaders) blackhole = msg.properties.headers;
    return msg;
  };
}

interface AmqplibMessage {
  fields: Record<string, unknown> | null;
  properties: Record<string, unknown> | null;
  content: Buffer | null;
}
type Handler = (f: AmqplibDecoded) => Handler;

function amqplibParse(chunk: Buffer): Op {
  let rest = Buffer.alloc(0);
  let incoming: Buffer | null = null;
  let delivered: AmqplibMessage | null = null;

  // Connection#recvFrame, with the stream's read() replaced by the one pending chunk.
  function recvFrame(): AmqplibDecoded | false {
    const frame = amqpFrame.parseFrame(rest, FRAME_MAX);
    if (!frame) {
      if (incoming === null) return false;
      rest = Buffer.concat([rest, incoming]);
      incoming = null;
      return recvFrame();
    }
    rest = frame.rest;
    return amqpFrame.decodeFrame(frame);
  }

  // Channel's acceptDeliveryOrReturn / acceptMessage state machine (emit replaced by a store).
  function acceptDeliveryOrReturn(f: AmqplibDecoded): Handler {
    if (f.id !== defs.BasicDeliver) throw new Error('Expected BasicDeliver');
    const fields = f.fields as Record<string, unknown>;
    return acceptMessage((message) => {
      message.fields = fields;
      delivered = message;
    });
  }
  function acceptMessage(continuation: (m: AmqplibMessage) => void): Handler {
    let totalSize = 0;
    let remaining = 0;
    let buffers: Buffer[] | null = null;
    const message: AmqplibMessage = { fields: null, properties: null, content: null };
    return headers;
    function headers(f: AmqplibDecoded): Handler {
      if (f.id !== defs.BasicProperties) throw new Error('Expected headers frame after delivery');
      message.properties = f.fields as Record<string, unknown>;
      totalSize = remaining = f.size as number;
      if (totalSize === 0) {
        message.content = Buffer.alloc(0);
        continuation(message);
        return acceptDeliveryOrReturn;
      }
      return content;
    }
    function content(f: AmqplibDecoded): Handler {
      if (!f.content) throw new Error('Expected content frame after headers');
      remaining -= f.content.length;
      if (remaining === 0) {
        if (buffers !== null) {
          buffers.push(f.content);
          message.content = Buffer.concat(buffers);
        } else message.content = f.content;
        continuation(message);
        return acceptDeliveryOrReturn;
      }
      if (remaining < 0) throw new Error(`Too much content sent! Expected ${totalSize} bytes`);
      if (buffers !== null) buffers.push(f.content);
      else buffers = [f.content];
      return content;
    }
  }

  let handle: Handler = acceptDeliveryOrReturn;
  return () => {
    incoming = chunk;
    let f = recvFrame();
    while (f) {
      handle = handle(f);
      f = recvFrame();
    }
    const msg = delivered as AmqplibMessage | null;
    if (msg === null) throw new Error('no message assembled');
    delivered = null;
    return msg;
  };
}

// ---------------------------------------------------------------------------------------------------
// Sanity: both sides must agree on what they encode and decode before we time anything.

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`sanity check failed: ${what}`);
}

function sameHeaders(a: unknown, b: FieldTable): boolean {
  const x = a as Record<string, unknown>;
  return Object.keys(b).length === Object.keys(x).length && Object.keys(b).every((k) => x[k] === b[k]);
}

function sanity(): void {
  for (const props of [PROPS_PLAIN, PROPS_HEADERS]) {
    // Our publish, read back by amqplib's parser.
    const ours = oursEncode(props)() as Buffer;
    let buf = ours;
    const frames: AmqplibDecoded[] = [];
    for (let f = amqpFrame.parseFrame(buf, FRAME_MAX); f; f = amqpFrame.parseFrame(buf, FRAME_MAX)) {
      buf = f.rest;
      frames.push(amqpFrame.decodeFrame(f));
    }
    check(buf.length === 0 && frames.length === 3, 'our publish is three whole frames');
    check(frames[0].id === defs.BasicPublish, 'our method frame is basic.publish');
    const mf = frames[0].fields as Record<string, unknown>;
    check(mf.exchange === EXCHANGE && mf.routingKey === ROUTING_KEY, 'our publish fields');
    const pf = frames[1].fields as Record<string, unknown>;
    check(frames[1].size === BODY.length, 'our body size');
    check(pf.contentType === props.contentType && pf.deliveryMode === 2 && pf.messageId === props.messageId, 'our props');
    check(props.headers ? sameHeaders(pf.headers, props.headers) : pf.headers === undefined, 'our headers');
    check((frames[2].content as Buffer).equals(BODY), 'our body');
    // amqplib's publish has the same length (same field-table integer widths, same layout).
    const theirs = amqplibEncode(props)() as Buffer;
    check(theirs.length === ours.length, `encoded lengths differ: ours ${ours.length}, amqplib ${theirs.length}`);

    // The deliver chunk, through both parsers.
    const chunk = deliverChunk(props);
    const a = oursParse(chunk, true)() as AssembledContent<DecodedMethod>;
    const b = amqplibParse(chunk)() as AmqplibMessage;
    check(a.method.name === 'basic.deliver', 'ours: method');
    const args = a.method.args as unknown as Record<string, unknown>;
    for (const k of ['consumerTag', 'deliveryTag', 'redelivered', 'exchange', 'routingKey']) {
      check(args[k] === (b.fields as Record<string, unknown>)[k], `deliver field ${k}`);
    }
    const bp = b.properties as Record<string, unknown>;
    for (const k of ['contentType', 'deliveryMode', 'messageId'] as const) {
      check(a.properties[k] === bp[k], `property ${k}`);
    }
    if (props.headers) {
      check(sameHeaders(a.properties.headers, props.headers), 'ours: headers');
      check(sameHeaders(bp.headers, props.headers), 'amqplib: headers');
    }
    check(a.body.equals(BODY) && (b.content as Buffer).equals(BODY), 'bodies');
  }
}

// ---------------------------------------------------------------------------------------------------
// Measurement

let blackhole: unknown;
const gcFn = (globalThis as { gc?: () => void }).gc as () => void;

function timeFor(op: Op, ms: number): number {
  const budget = ms * 1e6;
  const start = process.hrtime.bigint();
  let ops = 0;
  let elapsed = 0;
  do {
    for (let i = 0; i < BATCH; i++) blackhole = op();
    ops += BATCH;
    elapsed = Number(process.hrtime.bigint() - start);
  } while (elapsed < budget);
  return (ops * 1e9) / elapsed;
}

function heapNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes allocated by `n` calls of op, or -1 if a GC ran inside the window (the sample is void). */
function allocWindow(op: Op, n: number): number {
  const profiler = new v8.GCProfiler();
  gcFn();
  gcFn();
  profiler.start();
  const before = heapNow();
  for (let i = 0; i < n; i++) blackhole = op();
  const after = heapNow();
  const gcs = profiler.stop().statistics.length;
  return gcs > 0 ? -1 : after - before;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const NOOP: Op = () => undefined;

function bytesPerOp(op: Op): number {
  const samples: number[] = [];
  let n = ALLOC_OPS;
  while (samples.length < ALLOC_SAMPLES) {
    const total = allocWindow(op, n);
    if (total < 0) {
      if (n <= 500) throw new Error('cannot get a GC-free allocation window');
      n = Math.floor(n / 2);
      continue;
    }
    const base = allocWindow(NOOP, n);
    if (base < 0) continue;
    samples.push((total - base) / n);
  }
  return Math.max(0, median(samples));
}

interface Impl {
  library: 'warren' | 'amqplib';
  variant?: string;
  op: Op;
}
interface Case {
  group: 'encode' | 'parse';
  name: string;
  impls: Impl[];
}
interface Row {
  group: string;
  case: string;
  library: string;
  variant: string | null;
  opsPerSec: number;
  roundsOpsPerSec: number[];
  bytesPerOp: number;
  ratio: number | null;
}

function runCase(c: Case): Row[] {
  for (const impl of c.impls) timeFor(impl.op, WARMUP_MS);
  const rounds: number[][] = c.impls.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    c.impls.forEach((impl, i) => {
      gcFn();
      rounds[i].push(timeFor(impl.op, ROUND_MS));
    });
  }
  const rows: Row[] = c.impls.map((impl, i) => ({
    group: c.group,
    case: c.name,
    library: impl.library,
    variant: impl.variant ?? null,
    opsPerSec: median(rounds[i]),
    roundsOpsPerSec: rounds[i].map(Math.round),
    bytesPerOp: bytesPerOp(impl.op),
    ratio: null,
  }));
  const base = rows.find((r) => r.library === 'amqplib') as Row;
  for (const r of rows) if (r.library === 'warren') r.ratio = r.opsPerSec / base.opsPerSec;
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// Output

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function printTable(rows: Row[]): void {
  const head = ['case', 'library', 'ops/s', 'bytes/op', 'ours/amqplib'];
  const body = rows.map((r) => [
    `${r.group}: ${r.case}`,
    r.variant ? `${r.library} (${r.variant})` : r.library,
    fmtInt(r.opsPerSec),
    fmtInt(r.bytesPerOp),
    r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  let group = '';
  for (let i = 0; i < rows.length; i++) {
    const key = `${rows[i].group}:${rows[i].case}`;
    if (group && key !== group) console.log('');
    group = key;
    console.log(line(body[i]));
  }
}

const METHODOLOGY = [
  `ops/s: median of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms per implementation after ${WARMUP_MS} ms warm-up; gc() before each round.`,
  `bytes/op: --expose-gc; gc(); (heapUsed + arrayBuffers) growth over ${ALLOC_OPS} ops with no GC in the window (checked with v8.GCProfiler, else retried smaller), minus an empty op; median of ${ALLOC_SAMPLES}. Pooled allocUnsafe slabs count as 8 KiB each, amortised.`,
  'encode = basic.publish + header + 256 B body frame in one buffer (amqplib: Connection#sendMessage single-chunk path).',
  'parse = one chunk (deliver + header + 256 B body) → fields, properties, body (amqplib: Connection#recvFrame incl. its Buffer.concat of the chunk + Channel acceptMessage).',
  'properties: contentType, deliveryMode, messageId; "headers" adds a 5-entry table (3 strings, 2 ints). amqplib decodes headers eagerly; ours lazily — "headers read" touches properties.headers on every message.',
];

// ---------------------------------------------------------------------------------------------------

function main(): void {
  sanity();
  const plainChunk = deliverChunk(PROPS_PLAIN);
  const headersChunk = deliverChunk(PROPS_HEADERS);
  const cases: Case[] = [
    {
      group: 'encode',
      name: 'publish, no headers',
      impls: [
        { library: 'warren', op: oursEncode(PROPS_PLAIN) },
        { library: 'amqplib', op: amqplibEncode(PROPS_PLAIN) },
      ],
    },
    {
      group: 'encode',
      name: 'publish, 5 headers',
      impls: [
        { library: 'warren', op: oursEncode(PROPS_HEADERS) },
        { library: 'amqplib', op: amqplibEncode(PROPS_HEADERS) },
      ],
    },
    {
      group: 'parse',
      name: 'deliver, no headers',
      impls: [
        { library: 'warren', op: oursParse(plainChunk, false) },
        { library: 'amqplib', op: amqplibParse(plainChunk) },
      ],
    },
    {
      group: 'parse',
      name: 'deliver, 5 headers',
      impls: [
        { library: 'warren', variant: 'headers not read', op: oursParse(headersChunk, false) },
        { library: 'warren', variant: 'headers read', op: oursParse(headersChunk, true) },
        { library: 'amqplib', op: amqplibParse(headersChunk) },
      ],
    },
  ];

  console.log(
    `codec benchmark — node ${process.version}, amqplib ${amqplibVersion}, ${plainChunk.length}/${headersChunk.length}-byte deliver chunks${QUICK ? ' (quick)' : ''}\n`,
  );
  const rows: Row[] = [];
  for (const c of cases) rows.push(...runCase(c));
  printTable(rows);
  console.log('');
  for (const m of METHODOLOGY) console.log(`  * ${m}`);

  const target = rows.filter((r) => r.ratio !== null && r.variant !== 'headers read');
  const met = target.every((r) => (r.ratio as number) >= 2);
  console.log(`\n  target (ours ≥ 2× amqplib ops/s on every case): ${met ? 'met' : 'NOT met'}`);

  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, 'codec.json');
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'codec',
        date: new Date().toISOString(),
        node: process.version,
        v8: process.versions.v8,
        platform: `${process.platform}-${process.arch}`,
        amqplib: amqplibVersion,
        quick: QUICK,
        settings: { WARMUP_MS, ROUNDS, ROUND_MS, ALLOC_SAMPLES, ALLOC_OPS, bodyBytes: BODY.length, frameMax: FRAME_MAX },
        methodology: METHODOLOGY,
        targetMet: met,
        rows: rows.map((r) => ({
          ...r,
          opsPerSec: Math.round(r.opsPerSec),
          bytesPerOp: Math.round(r.bytesPerOp),
          ratio: r.ratio === null ? null : Number(r.ratio.toFixed(3)),
        })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`  wrote ${path.relative(process.cwd(), out)}`);
  if (blackhole === Symbol.for('never')) console.log('');
}

if (typeof gcFn !== 'function') {
  // Re-run this file with gc exposed and a young generation big enough for GC-free allocation windows.
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, '--expose-gc', '--max-semi-space-size=64', __filename, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
} else {
  main();
}
