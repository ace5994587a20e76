import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { WarrenHeaders } from '../../lib/nest';
import { amqpUrl, settledQueueCounts, uniqueName } from '../support/broker';
import { BrokerProbe } from '../support/nest-support';

// A Warren microservice in its own process (fixtures/signal-worker.ts) with Nest's shutdown hooks, stopped by SIGTERM
// while an event handler is running.

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '../..');
const WORKER = path.join(__dirname, 'fixtures', 'signal-worker.ts');
const SHUTDOWN_TIMEOUT_MS = 8000;
const HANDLER_MS = 1500;

class Lines extends EventEmitter<{ line: [line: string] }> {
  readonly items: string[] = [];

  push(line: string): void {
    this.items.push(line);
    this.emit('line', line);
  }
}

interface Worker {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** stdout, line by line (`items`), with a 'line' event for each. */
  lines: Lines;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(queue: string, useProcessExit: boolean): Worker {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', WORKER], {
    cwd: ROOT,
    env: {
      ...process.env,
      AMQP_URL: amqpUrl(),
      WORKER_QUEUE: queue,
      WORKER_CONNECTION_NAME: uniqueName('nest-signal-worker'),
      WORKER_SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT_MS),
      WORKER_HANDLER_MS: String(HANDLER_MS),
      WORKER_USE_PROCESS_EXIT: useProcessExit ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new Lines();
  const stderr: string[] = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) lines.push(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return { child, lines, stderr, exited };
}

/** Resolves once the worker printed `line`; fails with its stderr if it exits first. */
function lineFrom(worker: Worker, line: string): Promise<void> {
  if (worker.lines.items.includes(line)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onLine = (l: string) => {
      if (l !== line) return;
      worker.child.off('exit', onExit);
      worker.lines.off('line', onLine);
      resolve();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      worker.lines.off('line', onLine);
      reject(new Error(`worker exited (${code ?? signal}) before printing '${line}': ${worker.stderr.join('')}`));
    };
    worker.lines.on('line', onLine);
    worker.child.once('exit', onExit);
  });
}

describe('SIGTERM with enableShutdownHooks()', () => {
  let probe: BrokerProbe;
  const workers: Worker[] = [];

  beforeEach(async () => {
    probe = await BrokerProbe.open();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill();
    await probe.close();
  });

  it.each([
    {
      hooks: 'enableShutdownHooks([], { useProcessExit: true })',
      useProcessExit: true,
      exit: { code: 0, signal: null },
    },
    { hooks: 'enableShutdownHooks()', useProcessExit: false, exit: { code: null, signal: 'SIGTERM' } },
  ])(
    '$hooks: the running handler finishes, its message is acked, the process exits within shutdownTimeout',
    async ({ useProcessExit, exit }) => {
      const queue = probe.queue('signal');
      const worker = startWorker(queue, useProcessExit);
      workers.push(worker);
      await lineFrom(worker, 'listening');

      await probe.publish('', queue, 1, { headers: { [WarrenHeaders.PATTERN]: 'signal.work' } });
      await lineFrom(worker, 'started 1');
      const signalledAt = Date.now();
      worker.child.kill('SIGTERM');

      // Nest re-raises the signal after its shutdown unless told to call process.exit(0).
      expect(await worker.exited).toEqual(exit);
      expect(Date.now() - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      expect(worker.lines.items).toEqual(['listening', 'started 1', 'finished 1']);
      expect(worker.stderr.join('')).toBe('');
      // Acked before the connection closed: nothing went back to the queue for a redelivery (a lost ack would show
      // only once the broker has handled the closed connection: count when nothing is unacknowledged).
      expect((await settledQueueCounts(queue)).ready).toBe(0);
    },
  );
});
