import type { Channel, ExchangeOptions, QueueOptions } from './channel';
import { ChannelError } from './errors';
import type { FieldTable } from './protocol/field-table';

/** What a replay reports: renamed server-named queues, and entities the broker refused. */
export interface ReplayHooks {
  onRename(from: string, to: string): void;
  /** The broker refused one entity (a channel error): the replay goes on with the rest. */
  onFailed(entity: string, error: ChannelError): void;
}

interface ExchangeRecord {
  name: string;
  type: string;
  options: ExchangeOptions;
}

/** A declared queue. Server-named queues (`declaredAs === ''`) get a new name on every re-declare. */
export interface QueueRecord {
  declaredAs: string;
  name: string;
  options: QueueOptions;
  /** Its last replay was refused: whoever consumes it declares it (and its bindings) again before consuming. */
  replayFailed?: boolean;
}

interface BindingRecord {
  kind: 'queue' | 'exchange';
  /** Queue record (for queue bindings) or exchange name. */
  destination: QueueRecord | string;
  source: string;
  routingKey: string;
  arguments?: FieldTable;
}

/**
 * What the application declared through the session, kept to be re-declared after a reconnect in
 * the order exchanges → queues → bindings. Deletes remove entries (and the bindings that hang off them).
 */
export class TopologyRecord {
  private readonly exchanges = new Map<string, ExchangeRecord>();
  private readonly queues: QueueRecord[] = [];
  private bindings: BindingRecord[] = [];

  addExchange(name: string, type: string, options: ExchangeOptions): void {
    if (options.passive || name === '' || name.startsWith('amq.')) return;
    this.exchanges.set(name, { name, type, options: { ...options, noWait: false } });
  }

  hasExchange(name: string): boolean {
    return this.exchanges.has(name);
  }

  removeExchange(name: string): void {
    this.exchanges.delete(name);
    this.bindings = this.bindings.filter(
      (b) => b.source !== name && !(b.kind === 'exchange' && b.destination === name),
    );
  }

  /** Record a queue; returns its record (the same one when re-declared). */
  addQueue(declaredAs: string, name: string, options: QueueOptions): QueueRecord | null {
    if (options.passive) return null;
    const existing = this.findQueue(name);
    if (existing) {
      existing.options = { ...options, noWait: false };
      return existing;
    }
    const q: QueueRecord = { declaredAs, name, options: { ...options, noWait: false } };
    this.queues.push(q);
    return q;
  }

  findQueue(name: string): QueueRecord | undefined {
    return this.queues.find((q) => q.name === name);
  }

  removeQueue(name: string): void {
    const q = this.findQueue(name);
    if (!q) return;
    this.queues.splice(this.queues.indexOf(q), 1);
    this.bindings = this.bindings.filter((b) => b.destination !== q);
  }

  addBinding(
    kind: 'queue' | 'exchange',
    destination: string,
    source: string,
    routingKey: string,
    args?: FieldTable,
  ): void {
    const dest =
      kind === 'queue'
        ? (this.findQueue(destination) ?? this.addQueue(destination, destination, { passive: false }))
        : destination;
    if (!dest) return;
    const name = typeof dest === 'string' ? dest : dest.name;
    if (this.bindings.some((b) => isBinding(b, kind, name, source, routingKey, args))) return;
    this.bindings.push({ kind, destination: dest, source, routingKey, arguments: args });
  }

  removeBinding(
    kind: 'queue' | 'exchange',
    destination: string,
    source: string,
    routingKey: string,
    args?: FieldTable,
  ): void {
    this.bindings = this.bindings.filter((b) => !isBinding(b, kind, destination, source, routingKey, args));
  }

  /**
   * Re-declare everything, in the order exchanges → queues → bindings. `channel()` gives the channel to
   * use (a fresh one after a refusal closed the last). A refused entity is reported and skipped, so one
   * bad entity never holds back the rest; anything else (the connection died) ends the replay.
   * Server-named queues get new names: bindings and consumers that refer to the record follow.
   */
  async replay(channel: () => Promise<Channel>, hooks: ReplayHooks): Promise<void> {
    const step = async (entity: string, op: (ch: Channel) => Promise<unknown>): Promise<boolean> => {
      try {
        await op(await channel());
        return true;
      } catch (err) {
        if (!(err instanceof ChannelError)) throw err;
        hooks.onFailed(entity, err);
        return false;
      }
    };
    for (const e of this.exchanges.values())
      await step(`exchange '${e.name}'`, (ch) => ch.exchangeDeclare(e.name, e.type, e.options));
    for (const q of this.queues) {
      q.replayFailed = !(await step(`queue '${q.name}'`, (ch) => this.declareQueue(ch, q, hooks)));
    }
    for (const b of this.bindings) {
      if (b.kind === 'queue' && (b.destination as QueueRecord).replayFailed) continue;
      await step(describeBinding(b), (ch) => this.bind(ch, b));
    }
  }

  /** Declare one recorded queue and its bindings again (a consumer whose queue's replay was refused). */
  async replayQueue(ch: Channel, q: QueueRecord, onRename: (from: string, to: string) => void): Promise<void> {
    await this.declareQueue(ch, q, { onRename, onFailed: () => undefined });
    for (const b of this.bindings) if (b.destination === q) await this.bind(ch, b);
    q.replayFailed = false;
  }

  private async declareQueue(ch: Channel, q: QueueRecord, hooks: ReplayHooks): Promise<void> {
    const { queue } = await ch.queueDeclare(q.declaredAs, q.options);
    if (queue !== q.name) {
      const from = q.name;
      q.name = queue;
      hooks.onRename(from, queue);
    }
  }

  private bind(ch: Channel, b: BindingRecord): Promise<void> {
    if (b.kind === 'queue')
      return ch.queueBind((b.destination as QueueRecord).name, b.source, b.routingKey, { arguments: b.arguments });
    return ch.exchangeBind(b.destination as string, b.source, b.routingKey, { arguments: b.arguments });
  }
}

function describeBinding(b: BindingRecord): string {
  const dest = typeof b.destination === 'string' ? b.destination : b.destination.name;
  return `binding ${b.kind} '${dest}' ← exchange '${b.source}' ('${b.routingKey}')`;
}

/** The same binding: kind, destination (by its current name), source, routing key and arguments. */
function isBinding(
  b: BindingRecord,
  kind: 'queue' | 'exchange',
  destination: string,
  source: string,
  routingKey: string,
  args: FieldTable | undefined,
): boolean {
  return (
    b.kind === kind &&
    (typeof b.destination === 'string' ? b.destination : b.destination.name) === destination &&
    b.source === source &&
    b.routingKey === routingKey &&
    sameArgs(b.arguments, args)
  );
}

function sameArgs(a: FieldTable | undefined, b: FieldTable | undefined): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}
