import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { LoggerService } from '@nestjs/common';
import { type Measurement, RssSampler, measure, round } from '../lib/measure';
import {
  EventSink,
  type LatencyStats,
  type NestBench,
  type NestLibrary,
  type NestTask,
  RESULT_PREFIX,
  type WorkerResult,
  percentile,
  pipelined,
  processCpuMs,
} from './protocol';

/**
 * One library, one scenario, in its own process: the Nest server and its client live in this process, so the CPU
 * figure is server + client (not the broker's). Started by run.ts (compiled to plain JS, no TypeScript loader) with a
 * JSON task as argv[2]; prints `RESULT <json>` as its last stdout line.
 */

async function load(lib: NestLibrary): Promise<NestBench> {
  switch (lib) {
    case 'warren':
      return new (await import('./adapters/warren')).WarrenNestBench();
    case 'warren-publisher':
      return new (await import('./adapters/warren')).WarrenNestBench(true);
    case 'warren-no-otel':
      // Before Warren is loaded: as in an application without @opentelemetry/api.
      (await import('./adapters/telemetry')).hideOpenTelemetry();
      return new (await import('./adapters/warren')).WarrenNestBench(false, 'absent');
    case 'warren-otel':
      return new (await import('./adapters/warren')).WarrenNestBench(false, 'sdk');
    case 'floor-warren':
      return new (await import('./adapters/floor')).WarrenSessionFloor();
    case 'floor-amqplib':
      return new (await import('./adapters/floor')).AmqplibFloor();
    case 'nest-rmq':
      return new (await import('./adapters/nest-rmq')).NestRmqBench('acked');
    case 'nest-rmq-noack':
      return new (await import('./adapters/nest-rmq')).NestRmqBench('noack');
    case 'nest-rmq-stock':
      return new (await import('./adapters/nest-rmq')).NestRmqBench('stock');
    case 'golevelup':
      return new (await import('./adapters/golevelup')).GolevelupBench(false);
    case 'golevelup-stock':
      return new (await import('./adapters/golevelup')).GolevelupBench(true);
  }
}

/** Keeps the libraries' warnings and errors (digits masked for deduplication), drops the rest. */
class LogCollector implements LoggerService {
  private readonly byKey = new Map<string, { level: string; text: string; count: number }>();

  log(): void {}
  debug(): void {}
  verbose(): void {}
  warn(message: unknown, ...rest: unknown[]): void {
    this.add('warn', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.add('error', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.add('fatal', message, rest);
  }

  private add(level: string, message: unknown, rest: unknown[]): void {
    const parts = [message, ...rest.filter((r) => typeof r === 'string' && !/^[A-Z][\w:]*$/.test(r))];
    const text = parts
      .map((p) => (p instanceof Error ? `${p.name}: ${p.message}` : typeof p === 'string' ? p : JSON.stringify(p)))
      .join(' | ')
      .slice(0, 600);
    const key = `${level}:${text.replace(/\d+/g, '#')}`;
    const seen = this.byKey.get(key);
    if (seen) seen.count++;
    else if (this.byKey.size < 50) this.byKey.set(key, { level, text, count: 1 });
  }

  list(): Array<{ level: string; text: string; count: number }> {
    return [...this.byKey.values()];
  }
}

function message(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.split('\n')[0]}`;
  return String(err);
}

function report(result: WorkerResult): void {
  process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

/**
 * Every @nestjs/* package actually loaded in this process (from require.cache), with its folder and version: proves
 * whether the Warren build resolved Nest from bench/node_modules (11) or from the root's node_modules (12).
 */
export function loadedNestPackages(): Record<string, string> {
  const roots = new Map<string, string>();
  for (const file of Object.keys(require.cache)) {
    const m = /^(.*\/node_modules\/@nestjs\/[^/]+)\//.exec(file);
    if (!m || roots.has(m[1])) continue;
    let version = '?';
    try {
      version = (JSON.parse(readFileSync(path.join(m[1], 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // keep '?'
    }
    roots.set(m[1], version);
  }
  const repo = path.resolve(__dirname, '..', '..', '..', '..', '..', '..');
  const out: Record<string, string> = {};
  for (const [dir, version] of roots) out[path.relative(repo, dir)] = version;
  return out;
}

/** Rejects if `progress()` stays the same for stallMs (the run is stuck): says how far it got. */
function watchdog(stallMs: number, progress: () => string): { promise: Promise<never>; stop: () => void } {
  let last = progress();
  let since = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = progress();
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > stallMs) {
        reject(new Error(`stalled: no progress for ${stallMs} ms (${now})`));
      }
    }, 250);
  });
  promise.catch(() => undefined);
  return { promise, stop: () => clearInterval(timer) };
}

/** measure() plus the broker's CPU time over the same span. */
async function measured(task: NestTask, fn: () => Promise<void>, sampler: RssSampler): Promise<Measured> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const b0 = processCpuMs(task.brokerPid);
  const m = await measure(task.messages, fn, sampler);
  const b1 = processCpuMs(task.brokerPid);
  loop.disable();
  return {
    ...m,
    brokerCpuMs: b0 === undefined || b1 === undefined ? undefined : round(b1 - b0, 0),
    eventLoopMaxMs: round(loop.max / 1e6, 1),
  };
}

type Measured = Measurement & { brokerCpuMs?: number; eventLoopMaxMs?: number };

/** Longest time without a completion (reply or handled event) during the timed run: stalls show here. */
class GapTracker {
  private last = performance.now();
  longest = 0;
  at = 0;
  /** performance.now() when the longest gap ended (ms since the process started, as --trace-gc prints). */
  endedAt = 0;

  tick(count: number): void {
    const now = performance.now();
    if (now - this.last > this.longest) {
      this.longest = now - this.last;
      this.at = count;
      this.endedAt = now;
    }
    this.last = now;
  }

  reset(): void {
    this.last = performance.now();
    this.longest = 0;
    this.at = 0;
    this.endedAt = 0;
  }
}

function latencyStats(lat: Float64Array): LatencyStats {
  const sorted = Float64Array.from(lat).sort();
  const p50 = percentile(sorted, 50);
  let sum = 0;
  let over = 0;
  for (const v of lat) {
    sum += v;
    if (v > 10 * p50) over++;
  }
  const slowest = Array.from(lat, (ms, index) => ({ index, ms }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5)
    .map((s) => ({ index: s.index, ms: round(s.ms, 2) }));
  return {
    p50Ms: round(p50, 3),
    p90Ms: round(percentile(sorted, 90), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    p999Ms: round(percentile(sorted, 99.9), 3),
    maxMs: round(sorted[sorted.length - 1], 3),
    meanMs: round(sum / lat.length, 3),
    over10xP50: over,
    slowest,
  };
}

async function runRpc(
  bench: NestBench,
  task: NestTask,
  sampler: RssSampler,
): Promise<{ m: Measured; latency: LatencyStats; gap: GapTracker }> {
  const check = (i: number, reply: unknown): void => {
    if ((reply as { n?: unknown } | null)?.n !== i + 1) {
      throw new Error(`call ${i}: expected reply {"n":${i + 1}}, got ${JSON.stringify(reply)}`);
    }
  };
  // Warm-up, not measured: same shape as the measured run.
  await pipelined(task.warmup, task.inFlight, async (i) => check(i, await bench.call({ n: i })));

  const lat = new Float64Array(task.messages);
  const gap = new GapTracker();
  let done = 0;
  let started = 0;
  const dog = watchdog(task.stallMs, () => `${done} of ${task.messages} calls answered, ${started - done} in flight`);
  try {
    const m = await measured(
      task,
      () =>
        Promise.race([
          dog.promise,
          pipelined(task.messages, task.inFlight, async (i) => {
            if (started === 0) gap.reset();
            started++;
            const t0 = performance.now();
            const reply = await bench.call({ n: i });
            lat[i] = performance.now() - t0;
            check(i, reply);
            done++;
            gap.tick(done);
          }),
        ]),
      sampler,
    );
    return { m, latency: latencyStats(lat), gap };
  } finally {
    dog.stop();
  }
}

async function runEvents(
  bench: NestBench,
  task: NestTask,
  sink: EventSink,
  sampler: RssSampler,
): Promise<{ m: Measured; emitsConfirmedMs: number; gap: GapTracker }> {
  // Warm-up, not measured: emit and wait until the handler has seen them all.
  const warm = sink.expect(task.warmup);
  await pipelined(task.warmup, task.emitWindow, (i) => bench.emit({ i }));
  await warm;

  let confirmed = 0;
  let emitsConfirmedMs = NaN;
  const gap = new GapTracker();
  sink.onHit = () => gap.tick(sink.seen);
  const all = sink.expect(task.messages);
  const dog = watchdog(
    task.stallMs,
    () => `${confirmed} of ${task.messages} emits confirmed, handler saw ${sink.seen} of ${task.messages}`,
  );
  try {
    const m = await measured(
      task,
      () =>
        Promise.race([
          dog.promise,
          (async () => {
            const t0 = performance.now();
            gap.reset();
            await pipelined(task.messages, task.emitWindow, (i) => bench.emit({ i }).then(() => void confirmed++));
            emitsConfirmedMs = performance.now() - t0;
            await all;
          })(),
        ]),
      sampler,
    );
    return { m, emitsConfirmedMs: round(emitsConfirmedMs, 1), gap };
  } finally {
    dog.stop();
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as NestTask;
  const sampler = new RssSampler();
  const logs = new LogCollector();
  const sink = new EventSink();
  let bench: NestBench;
  try {
    bench = await load(task.lib);
  } catch (err) {
    report({
      error: `adapter failed to load: ${message(err)}`,
      errorStack: err instanceof Error ? err.stack : undefined,
    });
    process.exitCode = 1;
    return;
  }
  let stage = 'setup';
  try {
    await bench.setup(task, sink, logs);
    stage = task.scenario;
    let result: WorkerResult;
    if (task.scenario === 'events') {
      const { m, emitsConfirmedMs, gap } = await runEvents(bench, task, sink, sampler);
      result = {
        ...toResult(m),
        emitsConfirmedMs,
        longestGapMs: round(gap.longest, 1),
        longestGapAt: gap.at,
        longestGapEndedAtMs: round(gap.endedAt, 1),
      };
    } else {
      const { m, latency, gap } = await runRpc(bench, task, sampler);
      result = {
        ...toResult(m),
        latency,
        longestGapMs: round(gap.longest, 1),
        longestGapAt: gap.at,
        longestGapEndedAtMs: round(gap.endedAt, 1),
      };
    }
    const versions = { ...bench.describe(), ...prefixed(loadedNestPackages()) };
    stage = 'teardown';
    await bench.teardown();
    report({ library: bench.name, ...result, versions, logs: logs.list() });
  } catch (err) {
    report({
      library: bench.name,
      error: `${stage}: ${message(err)}`,
      errorStack: err instanceof Error ? err.stack : undefined,
      versions: { ...safe(() => bench.describe()), ...prefixed(loadedNestPackages()) },
      logs: logs.list(),
    });
    process.exitCode = 1;
    await Promise.race([bench.teardown().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  }
}

function toResult(m: Measured): WorkerResult {
  return {
    brokerCpuMs: m.brokerCpuMs,
    eventLoopMaxMs: m.eventLoopMaxMs,
    messages: m.messages,
    wallMs: m.wallMs,
    perSec: m.msgsPerSec,
    cpuMs: m.cpuMs,
    cpuMsPer1k: m.cpuMsPer1k,
    peakRssMiB: m.peakRssMiB,
  };
}

function prefixed(packages: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [dir, version] of Object.entries(packages)) out[`loaded ${dir}`] = version;
  return out;
}

function safe(fn: () => Record<string, string>): Record<string, string> {
  try {
    return fn();
  } catch {
    return {};
  }
}

if (require.main === module) {
  main().then(
    // Some libraries keep timers or sockets around after close(); the result is out, so leave now.
    () => process.exit(),
    (err: unknown) => {
      report({ error: message(err) });
      process.exit(1);
    },
  );
}
