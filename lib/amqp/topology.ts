import type { Channel, ExchangeOptions, QueueOptions } from './channel';
import type { FieldTable } from './protocol/field-table';

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
   * Re-declare everything on `ch`. Server-named queues get new names: `onRename(old, new)` is told,
   * and bindings and consumers that refer to the record follow automatically.
   */
  async replay(ch: Channel, onRename: (from: string, to: string) => void): Promise<void> {
    for (const e of this.exchanges.values()) await ch.exchangeDeclare(e.name, e.type, e.options);
    for (const q of this.queues) {
      const { queue } = await ch.queueDeclare(q.declaredAs, q.options);
      if (queue !== q.name) {
        const from = q.name;
        q.name = queue;
        onRename(from, queue);
      }
    }
    for (const b of this.bindings) {
      if (b.kind === 'queue')
        await ch.queueBind((b.destination as QueueRecord).name, b.source, b.routingKey, { arguments: b.arguments });
      else await ch.exchangeBind(b.destination as string, b.source, b.routingKey, { arguments: b.arguments });
    }
  }
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
