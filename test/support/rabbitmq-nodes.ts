import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const SCRIPT = path.resolve(__dirname, '../../scripts/rabbitmq-node.sh');

/**
 * Extra RabbitMQ nodes for tests (TLS, cluster, config), started by scripts/rabbitmq-node.sh beside the
 * default node and never touching it. Every node started here is stopped by `stop()`, and — should a
 * test fail or the run be interrupted — by the process exit/SIGINT/SIGTERM hooks below.
 */
export interface ExtraNode {
  /** Short name; the Erlang node is `${name}@localhost`. */
  readonly name: string;
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may log in from loopback). */
  readonly url: string;
  /** rabbitmqctl -n <node> ... (as the rabbitmq user). */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface NodeOptions {
  /** rabbitmq.conf contents. */
  config?: string;
  /** Plugins to enable, e.g. ['rabbitmq_auth_mechanism_ssl']. */
  plugins?: string[];
}

const started = new Set<string>();

export async function startNode(name: string, port: number, options: NodeOptions = {}): Promise<ExtraNode> {
  const args = ['start', name, String(port)];
  if (options.config !== undefined || options.plugins?.length) {
    const dir = mkdtempSync(path.join(tmpdir(), `warren-${name}-`));
    const conf = path.join(dir, 'rabbitmq.conf');
    writeFileSync(conf, options.config ?? '');
    args.push(conf);
    if (options.plugins?.length) args.push(options.plugins.join(','));
  }
  started.add(name);
  await run(args, 120_000);
  return {
    name,
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    ctl: (a, timeoutMs = 60_000) => rabbitmqctlOn(name, a, timeoutMs),
    stop: () => stopNode(name),
  };
}

export async function stopNode(name: string): Promise<void> {
  await run(['stop', name], 60_000);
  started.delete(name);
}

/** rabbitmqctl against one extra node, as the rabbitmq user (shared cookie). */
export async function rabbitmqctlOn(name: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const runAs = process.getuid?.() === 0 ? ['runuser', '-u', 'rabbitmq', '--'] : ['sudo', '-u', 'rabbitmq'];
  const [bin, ...pre] = runAs;
  const { stdout } = await execFileAsync(
    bin,
    [...pre, 'env', 'HOME=/var/lib/rabbitmq', 'rabbitmqctl', '-n', `${name}@localhost`, ...args],
    { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

async function run(args: string[], timeoutMs: number): Promise<void> {
  try {
    await execFileAsync('bash', [SCRIPT, ...args], { timeout: timeoutMs, encoding: 'utf8' });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/rabbitmq-node.sh ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

function stopAllSync(): void {
  for (const name of started) {
    try {
      execFileSync('bash', [SCRIPT, 'stop', name], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      // best effort on the way out
    }
  }
  started.clear();
}

process.once('exit', stopAllSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAllSync();
    process.kill(process.pid, signal);
  });
}
