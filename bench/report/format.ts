import type { Cell, EnvironmentSummary, Metric } from './model';

/** A figure with `digits` decimals and thousands separators: 70,901 · 3.67 · 0.256. */
export function formatNumber(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A cell as text: the median, then "(lowest–highest)" when it is the median of several samples that differ. */
export function formatCell(cell: Cell | undefined, metric: Metric): string {
  if (cell === undefined) return '—';
  const median = formatNumber(cell.value, metric.digits);
  if (cell.min === undefined || cell.max === undefined) return median;
  const low = formatNumber(cell.min, metric.digits);
  const high = formatNumber(cell.max, metric.digits);
  return low === high ? median : `${median} (${low}–${high})`;
}

/** A ratio: two decimals, or two significant digits below 0.1 so a small one does not read as 0. */
export function formatRatio(ratio: number | undefined): string {
  if (ratio === undefined) return '—';
  if (ratio === 0) return '0×';
  return `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)}×`;
}

/** "Intel(R) Xeon(R) Processor, 2 cores, 23.5 GiB RAM, Linux 6.1 (linux-x64)". */
export function formatMachine(env: EnvironmentSummary): string {
  const parts = [
    env.cpuModel ?? 'unknown CPU',
    env.cpus === undefined ? undefined : `${env.cpus} cores`,
    env.memoryGiB === undefined ? undefined : `${env.memoryGiB} GiB RAM`,
    env.os === undefined ? env.platform : `${env.os}${env.platform ? ` (${env.platform})` : ''}`,
  ];
  return parts.filter((p) => p !== undefined).join(', ');
}

/** "RabbitMQ 3.10.8 (Erlang/OTP 25.2.3) at 127.0.0.1:5672", "not recorded", or why it could not be asked. */
export function formatBroker(env: EnvironmentSummary): string {
  const b = env.broker;
  if (b === undefined) return 'not recorded';
  if (b.error !== undefined) return `unknown (${b.error})`;
  const name = [b.product ?? 'broker', b.version].filter(Boolean).join(' ');
  return `${name}${b.platform ? ` (${b.platform})` : ''}${env.brokerAddress ? ` at ${env.brokerAddress}` : ''}`;
}

/** "2026-11-22 10:40 UTC" from an ISO date. */
export function formatDate(iso: string | undefined): string {
  if (iso === undefined) return 'unknown date';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "amqplib 2.3.1, rabbitmq-client 5.0.8". */
export function formatPeers(peers: Record<string, string> | undefined): string | undefined {
  if (peers === undefined || Object.keys(peers).length === 0) return undefined;
  return Object.entries(peers)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
}
