import type { BenchEnvironment } from '../lib/environment';
import type { EnvironmentSummary } from './model';

/** What every part's JSON may hold around its numbers. */
export interface ResultsFile {
  environment?: Partial<BenchEnvironment> & { recordedAfterRun?: string };
  config?: { url?: string; repeat?: number };
}

/**
 * The environment a part ran in, from its JSON: `environment` (machine, Node, broker), the broker's address from
 * `config.url`, and the installed versions of `peerNames` (the packages that part compares).
 */
export function readEnvironment(json: ResultsFile, peerNames: readonly string[]): EnvironmentSummary {
  const env = json.environment ?? {};
  const peers: Record<string, string> = {};
  for (const name of peerNames) {
    const version = env.peers?.[name];
    if (version !== undefined) peers[name] = version;
  }
  return {
    date: env.date,
    node: env.node,
    platform: env.platform,
    os: env.os,
    cpus: env.cpus,
    cpuModel: env.cpuModel,
    memoryGiB: env.memoryGiB,
    scale: env.scale,
    broker: env.broker,
    brokerAddress: brokerAddress(json.config?.url),
    peers: Object.keys(peers).length > 0 ? peers : undefined,
    recordedAfterRun: env.recordedAfterRun,
  };
}

function brokerAddress(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}
