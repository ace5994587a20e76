import { randomBytes } from 'node:crypto';
import { type Measurement, RssSampler, measure, round } from '../lib/measure';
import type { ClientBench } from './types';

/**
 * One library, one scenario, in its own process so RSS and CPU are not shared. Started by run.ts (compiled to plain
 * JS) with a JSON task as argv[2]; prints `RESULT <json>` as its last stdout line.
 */

export const LIBRARIES = ['amqplib', 'rabbitmq-client', 'cloudamqp', 'warren'] as const;
export type Library = (typeof LIBRARIES)[number];
export type Scenario = 'publish' | 'confirm' | 'consume';

export interface WorkerTask {
  lib: Library;
  scenario: Scenario;
  url: string;
  queue: string;
  messages: number;
  bodySize: number;
  inFlight: number;
  prefetch: number;
}

export interface WorkerResult extends Partial<Measurement> {
  library?: string;
  /** RSS once the library is loaded, before connecting. */
  loadedRssMiB?: number;
  error?: string;
}

export const RESULT_PREFIX = 'RESULT ';

async function load(lib: Library): Promise<ClientBench> {
  switch (lib) {
    case 'amqplib':
      return new (await import('./amqplib')).AmqplibBench();
    case 'rabbitmq-client':
      return new (await import('./rabbitmq-client')).RabbitmqClientBench();
    case 'cloudamqp':
      return new (await import('./cloudamqp')).CloudamqpBench();
    case 'warren':
      return new (await import('./warren')).WarrenBench();
  }
}

function message(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] || err.name;
  return String(err);
}

function report(result: WorkerResult): void {
  process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as WorkerTask;
  const sampler = new RssSampler();
  let bench: ClientBench;
  try {
    bench = await load(task.lib);
  } catch (err) {
    report({ error: `adapter failed to load: ${message(err)}` });
    process.exitCode = 1;
    return;
  }
  const loadedRssMiB = round(process.memoryUsage.rss() / (1024 * 1024), 1);
  const body = randomBytes(task.bodySize);
  let stage = 'setup';
  try {
    await bench.setup(task.url);
    stage = task.scenario;
    const run = (): Promise<void> => {
      switch (task.scenario) {
        case 'publish':
          return bench.publishNoConfirm(task.queue, task.messages, body);
        case 'confirm':
          return bench.publishConfirm(task.queue, task.messages, task.inFlight, body);
        case 'consume':
          return bench.consume(task.queue, task.messages, task.prefetch);
      }
    };
    const m = await measure(task.messages, run, sampler);
    stage = 'teardown';
    await bench.teardown();
    report({ library: bench.name, loadedRssMiB, ...m });
  } catch (err) {
    report({ library: bench.name, error: `${stage}: ${message(err)}` });
    process.exitCode = 1;
    await bench.teardown().catch(() => undefined);
  }
}

if (require.main === module) {
  main().then(
    // Some clients keep timers or sockets around after close(); the result is out, so leave now.
    () => process.exit(),
    (err: unknown) => {
      report({ error: message(err) });
      process.exit(1);
    },
  );
}
