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
 *           properties, body) — ours: FrameParser → Channel#onFrame's deliver path (generated
 *           decodeBasicDeliver over a reused Reader) → ContentAssembler; amqplib: exactly
 *           Connection#recvFrame (parseFrame/decodeFrame over `rest`, including its Buffer.concat of
 *           each incoming chunk) feeding a copy of Channel's acceptDeliveryOrReturn/acceptMessage.
 *   Each with usual properties (contentType, deliveryMode, messageId) and without / with a 5-entry
 *   headers table. amqplib decodes headers eagerly; ours keeps them raw until `properties.headers` is
 *   first read, so ours is reported twice: headers not read, and headers read (decoded) on every message.
 *
 * The parent process checks that both codecs agree (each side decodes the other's output), then runs
 * itself twice as a child — once for throughput, once for allocation, because the flags that make
 * allocation measurable should not shape the throughput numbers — and prints/saves the merged table.
 *
 * Throughput child (node --expose-gc, default heap): per case, each implementation is warmed up, then
 * run in ROUNDS interleaved rounds (ours, amqplib, amqplib, ours, ...) of ROUND_MS each, with a full
 * gc() before every round so one side's garbage is never collected on the other side's clock; the
 * median round's ops/s is reported. Ratios come from rounds interleaved in time, so background load on
 * the machine hits both sides alike.
 *
 * Allocation child (--expose-gc --max-semi-space-size=64): for a sample, gc() twice, read heapUsed +
 * arrayBuffers (process.memoryUsage), run N ops, read again. A v8.GCProfiler spans the window and the
 * sample is discarded (retried with a smaller N) if any GC ran inside it, so the growth is exactly what
 * was allocated: JS heap objects (strings, result objects, Buffer views) plus ArrayBuffer backing
 * stores (Buffer.alloc; Buffer.allocUnsafe's 8 KiB pool slabs and our publish slabs when they are
 * carved, i.e. amortised over the ops that use them). The same window around an empty op is
 * subtracted (the measuring overhead); median of ALLOC_SAMPLES. Why not a V8 "total allocated"
 * counter: Node exposes none, and heap deltas are exact as long as no GC runs in the window — which the
 * profiler proves for every sample kept. Why not deltas with GC merely "disabled": Node cannot disable
 * it; a scavenge in the window would make the delta meaningless (even negative).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { machineEnvironment } from '../lib/environment';
import { ContentAssembler, type AssembledContent } from '../../lib/amqp/protocol/content-assembler';
import { FRAME_BODY, FRAME_HEADER, FRAME_METHOD, FrameParser } from '../../lib/amqp/protocol/frame-parser';
import { FrameEncoder } from '../../lib/amqp/protocol/frame-writer';
import { decodeMethod } from '../../lib/amqp/protocol/methods';
import { Reader } from '../../lib/amqp/protocol/reader';
import { BASIC_DELIVER, decodeBasicDeliver, type BasicDeliver } from '../../lib/amqp/protocol/spec.generated';
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
const amqplibVersion = (
  JSON.parse(fs.readFileSync(path.join(amqplibDir, 'package.json'), 'utf8')) as { version: string }
).version;

// ---------------------------------------------------------------------------------------------------
// Settings

/** --quick, or BENCH_SCALE < 1 (bench/run.sh smoke runs): shorter rounds, fewer samples. */
const QUICK = process.argv.includes('--quick') || Number(process.env.BENCH_SCALE ?? 1) < 1;
const WARMUP_MS = QUICK ? 150 : 400;
const ROUNDS = QUICK ? 5 : 15;
const ROUND_MS = QUICK ? 50 : 100;
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

/**
 * The parse input is a stream of distinct deliveries, cycled through: what one consumer sees. Consumer
 * tag, exchange and content type stay the same, the routing key takes a few values, and the delivery
 * tag, message id and trace-id header are new in every message — so no codec can profit from every
 * message being identical (ours caches short strings by their bytes; ids are decoded uncached).
 */
const STREAM_MESSAGES = 256;
const ROUTING_KEYS = [
  'orders.created.eu-west',
  'orders.created.us-east',
  'orders.updated.eu-west',
  'orders.paid.ap-south',
];

function hex(i: number, salt: string): string {
  return createHash('md5').update(`${salt}${i}`).digest('hex');
}

interface Delivery {
  fields: { consumerTag: string; deliveryTag: number; redelivered: boolean; exchange: string; routingKey: string };
  properties: MessageProperties;
  chunk: Buffer;
}

/** basic.deliver + content header + body frame in one chunk, built with amqplib's encoder (neutral input). */
function deliveries(withHeaders: boolean): Delivery[] {
  const out: Delivery[] = [];
  for (let i = 0; i < STREAM_MESSAGES; i++) {
    const fields = {
      consumerTag: CONSUMER_TAG,
      deliveryTag: 1_000_000 + i,
      redelivered: false,
      exchange: EXCHANGE,
      routingKey: ROUTING_KEYS[i % ROUTING_KEYS.length],
    };
    const id = hex(i, 'id');
    const messageId = `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`;
    const properties: MessageProperties = { ...BASE_PROPS, messageId };
    if (withHeaders) properties.headers = { ...HEADERS, 'x-trace-id': hex(i, 'trace'), 'x-sequence': 1048576 + i };
    const m = defs.encodeMethod(defs.BasicDeliver, CHANNEL, fields);
    const h = defs.encodeProperties(defs.BasicProperties, CHANNEL, BODY.length, properties as Record<string, unknown>);
    out.push({ fields, properties, chunk: Buffer.concat([m, h, amqpFrame.makeBodyFrame(CHANNEL, BODY)]) });
  }
  return out;
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

/** What Channel keeps for a content-bearing method (lib/amqp/channel.ts ContentMethod, deliver arm). */
interface OursContentMethod {
  kind: 'deliver' | 'other';
  args: BasicDeliver | unknown;
}

function oursParse(chunks: Buffer[], readHeaders: boolean): Op {
  const assembler = new ContentAssembler<OursContentMethod>(FRAME_MAX * 64);
  const deliverReader = new Reader(Buffer.alloc(0));
  let done: AssembledContent<OursContentMethod> | null = null;
  // Connection#onFrame hands channel frames to Channel#onFrame, which decodes basic.deliver on a
  // hot path (the generated decoder over a reused Reader) and everything else with decodeMethod.
  // Payloads as ranges of the chunk, as the channel takes them: method and header decoded in place, the body a view.
  const parser = new FrameParser((type, _channel, buf, start, end) => {
    if (type === FRAME_METHOD) {
      if (end - start >= 4 && buf.readUInt32BE(start) === BASIC_DELIVER) {
        assembler.start({ kind: 'deliver', args: decodeBasicDeliver(deliverReader.reset(buf, start + 4, end)) });
      } else assembler.start({ kind: 'other', args: decodeMethod(buf.subarray(start, end)).args });
    } else if (type === FRAME_HEADER) done = assembler.headerAt(buf, start, end);
    else if (type === FRAME_BODY) done = assembler.bodyFrame(buf.subarray(start, end));
  }, FRAME_MAX);
  let next = 0;
  return () => {
    parser.push(chunks[next]);
    next = (next + 1) % chunks.length;
    const msg = done as AssembledContent<OursContentMethod> | null;
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

function amqplibParse(chunks: Buffer[]): Op {
  let rest: Buffer = Buffer.alloc(0);
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
  let next = 0;
  return () => {
    incoming = chunks[next];
    next = (next + 1) % chunks.length;
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
    const encoded = oursEncode(props)() as Buffer;
    let buf = encoded;
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
    check(
      pf.contentType === props.contentType && pf.deliveryMode === 2 && pf.messageId === props.messageId,
      'our props',
    );
    check(props.headers ? sameHeaders(pf.headers, props.headers) : pf.headers === undefined, 'our headers');
    check((frames[2].content as Buffer).equals(BODY), 'our body');
    // amqplib's publish has the same length (same field-table integer widths, same layout).
    const them = amqplibEncode(props)() as Buffer;
    check(them.length === encoded.length, `encoded lengths differ: ours ${encoded.length}, amqplib ${them.length}`);

    // The delivery stream, through both parsers, against what was encoded.
    const stream = deliveries(props.headers !== undefined);
    const chunks = stream.map((d) => d.chunk);
    const ours = oursParse(chunks, true);
    const theirs = amqplibParse(chunks);
    for (const d of stream) {
      const a = ours() as AssembledContent<OursContentMethod>;
      const b = theirs() as AmqplibMessage;
      check(a.method.kind === 'deliver', 'ours: method');
      const args = a.method.args as unknown as Record<string, unknown>;
      const bf = b.fields as Record<string, unknown>;
      for (const k of ['consumerTag', 'deliveryTag', 'redelivered', 'exchange', 'routingKey'] as const) {
        check(args[k] === d.fields[k] && bf[k] === d.fields[k], `deliver field ${k}`);
      }
      const bp = b.properties as Record<string, unknown>;
      for (const k of ['contentType', 'deliveryMode', 'messageId'] as const) {
        check(a.properties[k] === d.properties[k] && bp[k] === d.properties[k], `property ${k}`);
      }
      if (d.properties.headers) {
        check(sameHeaders(a.properties.headers, d.properties.headers), 'ours: headers');
        check(sameHeaders(bp.headers, d.properties.headers), 'amqplib: headers');
      }
      check(a.body.equals(BODY) && (b.content as Buffer).equals(BODY), 'bodies');
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Measurement

let blackhole: unknown;
const gcFn = (globalThis as { gc?: () => void }).gc as () => void;

/** Runs op for ~ms of wall time; ops per wall-clock second and per second of process CPU time. */
function timeRound(op: Op, ms: number): { wall: number; cpu: number } {
  const budget = ms * 1e6;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let ops = 0;
  let elapsed = 0;
  do {
    for (let i = 0; i < BATCH; i++) blackhole = op();
    ops += BATCH;
    elapsed = Number(process.hrtime.bigint() - start);
  } while (elapsed < budget);
  const cpu = process.cpuUsage(cpu0);
  return { wall: (ops * 1e9) / elapsed, cpu: (ops * 1e6) / Math.max(1, cpu.user + cpu.system) };
}

function timeFor(op: Op, ms: number): number {
  return timeRound(op, ms).wall;
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
  timeFor(op, WARMUP_MS / 2); // compiled and its feedback allocated before anything is counted
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
  /** Median round, ops per second of process CPU time (the table's ops/s). */
  opsPerSec: number;
  /** Median round, ops per wall-clock second (equal to opsPerSec on an idle machine). */
  wallOpsPerSec: number;
  bytesPerOp: number;
  /** ours / amqplib from opsPerSec, and from wallOpsPerSec. */
  ratio: number | null;
  wallRatio: number | null;
  rounds: { cpu: number[]; wall: number[] };
}
/** What a measuring child reports for one implementation, in case order. */
interface Measured {
  opsPerSec?: number;
  wallOpsPerSec?: number;
  rounds?: { cpu: number[]; wall: number[] };
  bytesPerOp?: number;
}

function buildCases(): Case[] {
  const plainChunks = deliveries(false).map((d) => d.chunk);
  const headersChunks = deliveries(true).map((d) => d.chunk);
  return [
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
        { library: 'warren', op: oursParse(plainChunks, false) },
        { library: 'amqplib', op: amqplibParse(plainChunks) },
      ],
    },
    {
      group: 'parse',
      name: 'deliver, 5 headers',
      impls: [
        { library: 'warren', variant: 'headers not read', op: oursParse(headersChunks, false) },
        { library: 'warren', variant: 'headers read', op: oursParse(headersChunks, true) },
        { library: 'amqplib', op: amqplibParse(headersChunks) },
      ],
    },
  ];
}

/** Throughput child: default heap settings (only gc exposed). */
function measureTime(cases: Case[]): Measured[][] {
  return cases.map((c) => {
    for (const impl of c.impls) timeFor(impl.op, WARMUP_MS);
    const rounds: number[][] = c.impls.map(() => []);
    const cpuRounds: number[][] = c.impls.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate the order too, so neither side always runs right after the other's warm caches.
      const order = c.impls.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) {
        gcFn();
        const t = timeRound(c.impls[i].op, ROUND_MS);
        rounds[i].push(t.wall);
        cpuRounds[i].push(t.cpu);
      }
    }
    process.stderr.write('.');
    return rounds.map((rs, i) => ({
      opsPerSec: median(cpuRounds[i]),
      wallOpsPerSec: median(rs),
      rounds: { cpu: cpuRounds[i].map(Math.round), wall: rs.map(Math.round) },
    }));
  });
}

/** Allocation child: a 64 MiB semi-space so that ALLOC_OPS ops fit between scavenges. */
function measureAlloc(cases: Case[]): Measured[][] {
  return cases.map((c) => {
    const out = c.impls.map((impl) => ({ bytesPerOp: bytesPerOp(impl.op) }));
    process.stderr.write('.');
    return out;
  });
}

const CHILD_FLAGS: Record<'time' | 'alloc', string[]> = {
  time: ['--expose-gc'],
  alloc: ['--expose-gc', '--max-semi-space-size=64'],
};

function runChild(phase: 'time' | 'alloc'): Measured[][] {
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, ...CHILD_FLAGS[phase], __filename, `--phase=${phase}`, ...process.argv.slice(2)],
    { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  if (r.status !== 0)
    throw new Error(`codec bench: the ${phase} child failed (status ${r.status}, ${r.signal ?? 'no signal'})`);
  const last = r.stdout.trim().split('\n').pop() as string;
  return JSON.parse(last) as Measured[][];
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
  `ops/s: own process (node --expose-gc, default heap); per case, ${WARMUP_MS} ms warm-up each, then ${ROUNDS} rounds of ${ROUND_MS} ms per implementation, interleaved (order alternating), gc() before every round; median round. Counted per second of process CPU time (process.cpuUsage, all threads incl. GC helpers), so time spent descheduled by other load on the machine does not count; wall-clock medians and ratios are in codec.json (same on an idle machine).`,
  `bytes/op: own process (--expose-gc --max-semi-space-size=64); after warm-up, gc(); growth of heapUsed + arrayBuffers over ${ALLOC_OPS} ops, kept only if v8.GCProfiler saw no GC in the window (else retried with fewer ops), minus the same for an empty op; median of ${ALLOC_SAMPLES}. allocUnsafe pool slabs / our publish slab count as allocated when carved (amortised).`,
  'encode = basic.publish + content header + 256 B body frame as one socket-ready buffer (amqplib: Connection#sendMessage single-chunk path: encodeMethod, encodeProperties, makeBodyFrame, copy).',
  "parse = one chunk (deliver + header + 256 B body) → fields, properties, body (ours: FrameParser → Channel's deliver path → ContentAssembler; amqplib: Connection#recvFrame incl. its Buffer.concat of the chunk, parseFrame/decodeFrame, Channel acceptMessage).",
  'properties: contentType, deliveryMode, messageId; "5 headers" adds a table of 3 strings + 2 ints. Parse input cycles through 256 distinct deliveries (new delivery tag, message id, trace-id header and sequence in each; 4 routing keys; same consumer tag, exchange, content type). amqplib decodes headers eagerly; ours lazily — "headers read" reads properties.headers on every message.',
];

// ---------------------------------------------------------------------------------------------------

function main(): void {
  sanity();
  const cases = buildCases();
  const phase = process.argv.find((a) => a.startsWith('--phase='))?.slice('--phase='.length);
  if (phase === 'time' || phase === 'alloc') {
    if (typeof gcFn !== 'function') throw new Error('run with --expose-gc');
    const measured = phase === 'time' ? measureTime(cases) : measureAlloc(cases);
    process.stdout.write(JSON.stringify(measured) + '\n');
    return;
  }

  const plainLen = deliveries(false)[0].chunk.length;
  const headersLen = deliveries(true)[0].chunk.length;
  console.log(
    `codec benchmark — node ${process.version}, amqplib ${amqplibVersion}; deliver chunks ${plainLen} / ${headersLen} B${QUICK ? ' (quick)' : ''}`,
  );
  process.stderr.write('  measuring throughput ');
  const times = runChild('time');
  process.stderr.write(' allocation ');
  const allocs = runChild('alloc');
  process.stderr.write(' done\n\n');

  const rows: Row[] = [];
  cases.forEach((c, ci) => {
    const caseRows: Row[] = c.impls.map((impl, i) => ({
      group: c.group,
      case: c.name,
      library: impl.library,
      variant: impl.variant ?? null,
      opsPerSec: times[ci][i].opsPerSec as number,
      wallOpsPerSec: times[ci][i].wallOpsPerSec as number,
      bytesPerOp: allocs[ci][i].bytesPerOp as number,
      ratio: null,
      wallRatio: null,
      rounds: times[ci][i].rounds as { cpu: number[]; wall: number[] },
    }));
    const base = caseRows.find((r) => r.library === 'amqplib') as Row;
    for (const r of caseRows) {
      if (r.library !== 'warren') continue;
      r.ratio = r.opsPerSec / base.opsPerSec;
      r.wallRatio = r.wallOpsPerSec / base.wallOpsPerSec;
    }
    rows.push(...caseRows);
  });

  printTable(rows);
  console.log('');
  for (const m of METHODOLOGY) console.log(`  * ${m}`);
  const met = rows.every((r) => r.ratio === null || r.ratio >= 2);
  console.log(`\n  target (ours ≥ 2× amqplib ops/s on every case and variant): ${met ? 'met' : 'NOT met'}`);

  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, 'codec.json');
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'codec',
        environment: { ...machineEnvironment(), v8: process.versions.v8 },
        amqplib: amqplibVersion,
        quick: QUICK,
        settings: {
          WARMUP_MS,
          ROUNDS,
          ROUND_MS,
          ALLOC_SAMPLES,
          ALLOC_OPS,
          bodyBytes: BODY.length,
          frameMax: FRAME_MAX,
        },
        methodology: METHODOLOGY,
        targetMet: met,
        rows: rows.map((r) => ({
          ...r,
          opsPerSec: Math.round(r.opsPerSec),
          wallOpsPerSec: Math.round(r.wallOpsPerSec),
          bytesPerOp: Math.round(r.bytesPerOp),
          ratio: r.ratio === null ? null : Number(r.ratio.toFixed(3)),
          wallRatio: r.wallRatio === null ? null : Number(r.wallRatio.toFixed(3)),
        })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`  wrote ${path.relative(process.cwd(), out)}`);
  if (blackhole === Symbol.for('never')) console.log('');
}

main();
