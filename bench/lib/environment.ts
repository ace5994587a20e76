import { readFileSync } from 'node:fs';
import { cpus, release, totalmem, type as osType } from 'node:os';
import * as path from 'node:path';
import type { Logger } from '../../lib/amqp';
import { REPO_ROOT } from './build';

/** The broker a part ran against, from the AMQP `server-properties` of connection.start. */
export interface BrokerInfo {
  /** e.g. "RabbitMQ". */
  product?: string;
  /** e.g. "3.10.8". */
  version?: string;
  /** e.g. "Erlang/OTP 25.2.3". */
  platform?: string;
  /** Why the broker could not be asked (the run itself still counts). */
  error?: string;
}

/** Facts kept next to a part's numbers in bench/results/<part>.json (`environment`). */
export interface BenchEnvironment {
  node: string;
  platform: string;
  /** Kernel, e.g. "Linux 6.1.0". */
  os: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  /** BENCH_SCALE of the run (1 = full message counts); absent for the codec part, which has its own `quick`. */
  scale?: number;
  date: string;
  /** Absent for parts that use no broker (codec). */
  broker?: BrokerInfo;
  /** Installed versions of bench/package.json's dependencies (the peers and the Nest they run on). */
  peers?: Record<string, string>;
}

/** The machine and Node: what every part records. */
export function machineEnvironment(): BenchEnvironment {
  const cpuList = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    os: `${osType()} ${release()}`,
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    date: new Date().toISOString(),
  };
}

/** The machine, Node, the scale, the broker at `url` and the peers' versions: what the broker parts record. */
export async function benchEnvironment(url: string): Promise<BenchEnvironment> {
  return {
    ...machineEnvironment(),
    scale: Number(process.env.BENCH_SCALE ?? '1'),
    broker: await brokerInfo(url),
    peers: peerVersions(),
  };
}

const silent: Logger = { warn: () => undefined, error: () => undefined };

/**
 * Opens one short connection to read the broker's product, version and platform; never throws. The client is loaded
 * here, not at the top, so the codec part (no broker) records its machine without loading it.
 */
export async function brokerInfo(url: string): Promise<BrokerInfo> {
  try {
    const { AmqpConnection } = await import('../../lib/amqp');
    const conn = await AmqpConnection.connect({
      url,
      connectionAttempts: 1,
      handshakeTimeout: 10,
      heartbeat: 0,
      connectionName: 'warren-bench-environment',
      logger: silent,
    });
    const props = conn.serverProperties;
    await conn.close();
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return { product: text(props.product), version: text(props.version), platform: text(props.platform) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** bench/package.json's dependencies as installed under bench/node_modules ("missing" when not installed). */
export function peerVersions(): Record<string, string> {
  const benchDir = path.join(REPO_ROOT, 'bench');
  const manifest = JSON.parse(readFileSync(path.join(benchDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const versions: Record<string, string> = {};
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(benchDir, 'node_modules', name, 'package.json'), 'utf8')) as {
        version?: string;
      };
      versions[name] = pkg.version ?? 'unknown';
    } catch {
      versions[name] = 'missing';
    }
  }
  return versions;
}
