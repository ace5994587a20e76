import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { promisify } from 'node:util';

/**
 * Helpers for tests that look at or act on the local RabbitMQ through `rabbitmqctl` (RABBITMQCTL overrides the
 * binary). Non-destructive helpers are safe in parallel integration tests; stopApp/startApp/withBrokerRestart are
 * for the serial fault project only.
 */

const execFileAsync = promisify(execFile);

const RABBITMQCTL = process.env.RABBITMQCTL ?? 'rabbitmqctl';
const DEFAULT_TIMEOUT_MS = 30_000;

/** The broker URL tests use: env AMQP_URL, or the local default. */
export function amqpUrl(): string {
  return process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
}

/** Host and port of amqpUrl(). */
export function brokerAddress(): { host: string; port: number } {
  const url = new URL(amqpUrl());
  return { host: url.hostname || '127.0.0.1', port: url.port ? Number(url.port) : 5672 };
}

/** prefix + pid + random, unique across parallel Jest workers and runs. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Runs rabbitmqctl with the given arguments; resolves with stdout, rejects with stderr in the message. */
export async function rabbitmqctl(args: string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await execFileAsync(RABBITMQCTL, args, {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8',
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string; killed?: boolean };
    const detail = (e.stderr || e.stdout || e.message).trim();
    const why = e.killed ? `timed out after ${timeoutMs} ms` : `failed (${String(e.code)})`;
    throw new Error(`rabbitmqctl ${args.join(' ')} ${why}: ${detail}`);
  }
}

async function rabbitmqctlJson(args: string[], timeoutMs?: number): Promise<Array<Record<string, unknown>>> {
  const out = await rabbitmqctl([...args, '--formatter', 'json'], timeoutMs);
  const trimmed = out.trim();
  if (!trimmed) return [];
  const parsed: unknown = JSON.parse(trimmed);
  if (!Array.isArray(parsed)) throw new Error(`rabbitmqctl ${args.join(' ')}: expected a JSON array, got ${trimmed}`);
  return parsed as Array<Record<string, unknown>>;
}

/** Tab-separated rows without headers (the format in which pids come out usable by close_connection). */
async function rabbitmqctlRows(args: string[], timeoutMs?: number): Promise<string[][]> {
  const out = await rabbitmqctl([...args, '--quiet', '--no-table-headers'], timeoutMs);
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('\t'));
}

export type FieldValue = string | number | boolean | null | FieldValue[] | { [key: string]: FieldValue };

/**
 * Decodes an AMQP field table as rabbitmqctl's JSON formatter prints it: `[[name, type, value], ...]`, nested tables
 * in the same shape, arrays as `[[type, value], ...]`.
 */
export function decodeTable(raw: unknown): Record<string, FieldValue> {
  const table: Record<string, FieldValue> = {};
  if (!Array.isArray(raw)) return table;
  for (const entry of raw) {
    if (!Array.isArray(entry) || entry.length !== 3) continue;
    const [name, type, value] = entry as [unknown, unknown, unknown];
    table[String(name)] = decodeValue(String(type), value);
  }
  return table;
}

function decodeValue(type: string, value: unknown): FieldValue {
  if (type === 'table') return decodeTable(value);
  if (type === 'array' && Array.isArray(value)) {
    return value.map((item) =>
      Array.isArray(item) && item.length === 2 ? decodeValue(String(item[0]), item[1]) : (item as FieldValue),
    );
  }
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  return JSON.stringify(value);
}

export interface BrokerConnection {
  /** Erlang pid as close_connection accepts it, e.g. `<rabbit@host.1795332586.811.0>`. */
  pid: string;
  /** Broker's name for the connection, e.g. `127.0.0.1:47172 -> 127.0.0.1:5672`. */
  name: string;
  /** The client-provided `connection_name` client property, if any. */
  clientName?: string;
  user: string;
  /** Server port the client connected to. */
  port?: number;
  /** Client's local port (matches `socket.localPort` on the client side). */
  peerPort?: number;
  clientProperties: Record<string, FieldValue>;
}

/** The broker's current AMQP connections. */
export async function listConnections(): Promise<BrokerConnection[]> {
  // The JSON formatter prints pids as `#PID<...>`, which close_connection rejects; the table formatter prints the
  // usable form. Both are keyed by the connection name, which is unique per connection.
  const [rows, details] = await Promise.all([
    rabbitmqctlRows(['list_connections', 'name', 'pid']),
    rabbitmqctlJson(['list_connections', 'name', 'user', 'port', 'peer_port', 'client_properties']),
  ]);
  const pids = new Map<string, string>();
  for (const row of rows) if (row.length >= 2) pids.set(row[0], row[1]);
  const result: BrokerConnection[] = [];
  for (const item of details) {
    const name = String(item.name);
    const pid = pids.get(name);
    if (pid === undefined) continue; // opened or closed between the two calls
    const clientProperties = decodeTable(item.client_properties);
    const clientName = clientProperties.connection_name;
    result.push({
      pid,
      name,
      clientName: typeof clientName === 'string' ? clientName : undefined,
      user: String(item.user),
      port: typeof item.port === 'number' ? item.port : undefined,
      peerPort: typeof item.peer_port === 'number' ? item.peer_port : undefined,
      clientProperties,
    });
  }
  return result;
}

/** Force-closes (connection.close 320 CONNECTION_FORCED) every connection matching pred; returns those closed. */
export async function closeConnectionsWhere(
  pred: (connection: BrokerConnection) => boolean,
  reason = 'closed by test',
): Promise<BrokerConnection[]> {
  const targets = (await listConnections()).filter(pred);
  await Promise.all(targets.map((c) => rabbitmqctl(['close_connection', c.pid, reason])));
  return targets;
}

/** Force-closes the connection with this client-provided name, waiting (10 s at most) until it is listed. */
export async function killConnection(clientName: string, reason = 'closed by test'): Promise<void> {
  await waitFor(
    async () => (await closeConnectionsWhere((c) => c.clientName === clientName, reason)).length > 0,
    10_000,
    `connection ${clientName} to be closed`,
  );
}

/**
 * Polls `fn` until it returns a truthy value (returned) or timeoutMs passes (throws, naming `what` and the last
 * error fn threw, if any). For broker state only, which offers no event to wait on.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A queue's counters as the broker keeps them: ready messages, delivered but unacknowledged ones, consumers. */
export interface QueueCounts {
  ready: number;
  unacked: number;
  consumers: number;
}

/** A queue's counters now (rabbitmqctl list_queues), or undefined if there is no such queue. */
export async function queueCounts(queue: string, vhost = '/'): Promise<QueueCounts | undefined> {
  const rows = await rabbitmqctlJson([
    'list_queues',
    '-p',
    vhost,
    'name',
    'messages_ready',
    'messages_unacknowledged',
    'consumers',
  ]);
  const row = rows.find((r) => r.name === queue);
  return row
    ? {
        ready: Number(row.messages_ready),
        unacked: Number(row.messages_unacknowledged),
        consumers: Number(row.consumers),
      }
    : undefined;
}

/**
 * A queue's counters once nothing is in flight any more: no consumer and nothing unacknowledged. Check a ready count
 * after a consumer went away with this, not with a passive declare right after the close: a channel that had
 * cancelled its consumer (a graceful shutdown) or holds basic.get deliveries gives its unacked messages back
 * after its close-ok, and RabbitMQ answers queue stats ahead of that requeue in the queue's mailbox. Polls the broker
 * (no event tells when a requeue is done), failing after timeoutMs.
 */
export async function settledQueueCounts(queue: string, timeoutMs = 10_000, vhost = '/'): Promise<QueueCounts> {
  return waitFor(
    async () => {
      const c = await queueCounts(queue, vhost);
      return c && c.unacked === 0 && c.consumers === 0 ? c : undefined;
    },
    timeoutMs,
    `queue ${queue} to have no consumer and nothing unacknowledged`,
    200,
  );
}

/** Queue names in a vhost. */
export async function listQueues(vhost = '/'): Promise<string[]> {
  const rows = await rabbitmqctlJson(['list_queues', '-p', vhost, 'name']);
  return rows.map((row) => String(row.name));
}

export async function queueExists(name: string, vhost = '/'): Promise<boolean> {
  return (await listQueues(vhost)).includes(name);
}

/** Deletes a queue; resolves false if it did not exist. */
export async function deleteQueue(name: string, vhost = '/'): Promise<boolean> {
  try {
    await rabbitmqctl(['delete_queue', '-p', vhost, name]);
    return true;
  } catch (err) {
    if (err instanceof Error && /not[_ ]found/i.test(err.message)) return false;
    throw err;
  }
}

export interface Binding {
  source: string;
  sourceKind: string;
  destination: string;
  destinationKind: string;
  routingKey: string;
  arguments: Record<string, FieldValue>;
}

/** All bindings in a vhost, including the default exchange's implicit ones (source ''). */
export async function listBindings(vhost = '/'): Promise<Binding[]> {
  const rows = await rabbitmqctlJson([
    'list_bindings',
    '-p',
    vhost,
    'source_name',
    'source_kind',
    'destination_name',
    'destination_kind',
    'routing_key',
    'arguments',
  ]);
  return rows.map((row) => ({
    source: String(row.source_name),
    sourceKind: String(row.source_kind),
    destination: String(row.destination_name),
    destinationKind: String(row.destination_kind),
    routingKey: String(row.routing_key),
    arguments: decodeTable(row.arguments),
  }));
}

/** Resolves once host:port accepts a TCP connection, polling every 100 ms. */
export async function waitForPort(port = brokerAddress().port, host = brokerAddress().host, timeoutMs = 60_000) {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect({ host, port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => {
          socket.destroy();
          resolve(false);
        });
      }),
    timeoutMs,
    `${host}:${port} to accept connections`,
  );
}

/** Stops the RabbitMQ application (the Erlang node stays up). Fault tests only. */
export async function stopApp(): Promise<void> {
  await rabbitmqctl(['stop_app'], 120_000);
}

/** Starts the RabbitMQ application, waits for it to boot and for the AMQP port to accept connections. */
export async function startApp(): Promise<void> {
  await rabbitmqctl(['start_app'], 120_000);
  await rabbitmqctl(['await_startup', '--timeout', '120'], 130_000);
  await waitForPort();
}

/** stop_app, run fn while the broker is down, then start_app (always, in finally) and wait until it is back. */
export async function withBrokerRestart<T>(fn: () => Promise<T>): Promise<T> {
  try {
    await stopApp();
    return await fn();
  } finally {
    await startApp();
  }
}
