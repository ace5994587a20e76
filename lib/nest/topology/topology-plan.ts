import { ChannelError, ConfigError, ReplyCode, type AmqpSession, type FieldTable } from '../../amqp';
import { checkKnownKeys } from '../../amqp/declare-options';
import {
  canonical,
  firstDifference,
  queueOptions,
  resolveExchange,
  resolveQueue,
  withOrigin,
  type ResolvedExchange,
  type ResolvedQueue,
} from './queue-arguments';
import { TopologyConflictError, topologyFailure } from './topology.errors';
import type { ExchangeDefinition, QueueDefinition, TopologyDefinition } from './topology.interface';

/** A queue of the plan. `name` is the broker's name once declared (server-named queues get theirs then). */
export interface QueueRef {
  name: string;
  readonly serverNamed: boolean;
}

interface PlannedExchange {
  def: ResolvedExchange;
  /** Named only by a string: used if it exists, created with defaults otherwise. */
  implicit: boolean;
  origin: string;
}

interface PlannedQueue {
  ref: QueueRef;
  def: ResolvedQueue;
  implicit: boolean;
  origin: string;
}

export interface PlannedBinding {
  queue?: QueueRef;
  destinationExchange?: string;
  source: string;
  routingKey: string;
  arguments?: FieldTable;
}

/** What a plan holds, in the order it declares it: for describing the topology (the AsyncAPI document). */
export interface PlanContents {
  exchanges: Array<{ def: ResolvedExchange; implicit: boolean }>;
  queues: Array<{ ref: QueueRef; def: ResolvedQueue; implicit: boolean }>;
  /** A queue binding has `queue`, an exchange-to-exchange binding `destinationExchange`. */
  bindings: Array<Readonly<PlannedBinding>>;
}

const TOPOLOGY_KEYS = ['exchanges', 'queues', 'bindings', 'exchangeBindings'];
const BINDING_KEYS = ['queue', 'exchange', 'routingKey', 'arguments'];
const EXCHANGE_BINDING_KEYS = ['source', 'destination', 'routingKey', 'arguments'];

/** Exchanges that exist on every broker and may not be declared. */
function predeclared(name: string): boolean {
  return name === '' || name.startsWith('amq.');
}

/**
 * Everything a server (or module) declares, collected from options and decorators, checked for contradictions
 * (the same entity defined twice differently fails before anything is sent), then declared in order: exchanges,
 * queues, exchange bindings, queue bindings. Declarations go through the session, which records them for recovery.
 */
export class TopologyPlan {
  private readonly exchanges = new Map<string, PlannedExchange>();
  private readonly queues = new Map<string, PlannedQueue>();
  private readonly serverNamed = new Map<QueueDefinition, PlannedQueue>();
  private readonly bindings = new Map<string, PlannedBinding>();

  /** Add shared topology. */
  add(topology: TopologyDefinition | undefined, origin: string): void {
    if (!topology) return;
    withOrigin(origin, () => {
      checkKnownKeys('topology', topology, TOPOLOGY_KEYS, 'topology');
      (topology.bindings ?? []).forEach((b, i) =>
        checkKnownKeys(`topology.bindings[${i}]`, b, BINDING_KEYS, 'binding'),
      );
      (topology.exchangeBindings ?? []).forEach((b, i) =>
        checkKnownKeys(`topology.exchangeBindings[${i}]`, b, EXCHANGE_BINDING_KEYS, 'exchange binding'),
      );
    });
    for (const e of topology.exchanges ?? []) this.exchange(e, origin);
    for (const q of topology.queues ?? []) this.queue(q, origin);
    for (const b of topology.exchangeBindings ?? [])
      this.bindExchange(b.destination, b.source, b.routingKey ?? '', b.arguments, origin);
    for (const b of topology.bindings ?? []) {
      this.bindQueue(this.queue(b.queue, origin), b.exchange, b.routingKey ?? '', b.arguments, origin);
    }
  }

  /** Add (or refer to) an exchange; returns its name. */
  exchange(ref: string | ExchangeDefinition, origin: string): string {
    // Checked even when predeclared: a definition with a misspelt key is a mistake wherever it points.
    const def = resolveExchange(typeof ref === 'string' ? { name: ref } : ref, origin);
    const name = def.name;
    if (predeclared(name)) return name;
    const existing = this.exchanges.get(name);
    if (typeof ref === 'string') {
      if (!existing) this.exchanges.set(name, { def, implicit: true, origin });
      return name;
    }
    if (existing && !existing.implicit) {
      const diff = firstDifference(existing.def, def);
      if (diff !== undefined) {
        throw new TopologyConflictError(
          `exchange '${name}' is defined differently in ${existing.origin} and ${origin} ('${diff}' differs)`,
          'exchange',
          name,
        );
      }
      return name;
    }
    this.exchanges.set(name, { def, implicit: false, origin });
    return name;
  }

  /** Add (or refer to) a queue; returns its ref. A server-named queue is one entity per definition object. */
  queue(ref: string | QueueDefinition, origin: string): QueueRef {
    if (typeof ref !== 'string' && ref.name === '') {
      let planned = this.serverNamed.get(ref);
      if (!planned) {
        planned = { ref: { name: '', serverNamed: true }, def: resolveQueue(ref, origin), implicit: false, origin };
        this.serverNamed.set(ref, planned);
      }
      return planned.ref;
    }
    const name = typeof ref === 'string' ? ref : ref.name;
    if (name === '') {
      throw new ConfigError(
        'queue',
        `a server-named queue needs a definition object ({ name: '' }), not '' (in ${origin})`,
      );
    }
    const existing = this.queues.get(name);
    if (typeof ref === 'string') {
      if (existing) return existing.ref;
      const planned: PlannedQueue = {
        ref: { name, serverNamed: false },
        def: resolveQueue({ name }, origin),
        implicit: true,
        origin,
      };
      this.queues.set(name, planned);
      return planned.ref;
    }
    const def = resolveQueue(ref, origin);
    if (existing && !existing.implicit) {
      const diff = firstDifference(existing.def, def);
      if (diff !== undefined) {
        throw new TopologyConflictError(
          `queue '${name}' is defined differently in ${existing.origin} and ${origin} ('${diff}' differs)`,
          'queue',
          name,
        );
      }
      return existing.ref;
    }
    if (existing) {
      existing.def = def;
      existing.implicit = false;
      existing.origin = origin;
      return existing.ref;
    }
    const planned: PlannedQueue = { ref: { name, serverNamed: false }, def, implicit: false, origin };
    this.queues.set(name, planned);
    return planned.ref;
  }

  /** Whether the plan holds a full definition of this queue (not only a name). */
  queueDefinition(ref: QueueRef): ResolvedQueue | undefined {
    for (const q of [...this.queues.values(), ...this.serverNamed.values()]) if (q.ref === ref) return q.def;
    return undefined;
  }

  bindQueue(
    queue: QueueRef,
    exchange: string | ExchangeDefinition,
    routingKey: string,
    args: FieldTable | undefined,
    origin: string,
  ): void {
    const source = this.exchange(exchange, origin);
    const key = `q|${this.queueKey(queue)}|${source}|${routingKey}|${canonical(args ?? {})}`;
    if (!this.bindings.has(key)) this.bindings.set(key, { queue, source, routingKey, arguments: args });
  }

  bindExchange(
    destination: string,
    source: string,
    routingKey: string,
    args: FieldTable | undefined,
    origin: string,
  ): void {
    this.exchange(destination, origin);
    this.exchange(source, origin);
    const key = `e|${destination}|${source}|${routingKey}|${canonical(args ?? {})}`;
    if (!this.bindings.has(key))
      this.bindings.set(key, { destinationExchange: destination, source, routingKey, arguments: args });
  }

  /** Everything planned so far. Implicit entities (named only) are used if they exist, created as shown otherwise. */
  contents(): PlanContents {
    return {
      exchanges: [...this.exchanges.values()].map(({ def, implicit }) => ({ def, implicit })),
      queues: [...this.queues.values(), ...this.serverNamed.values()].map(({ ref, def, implicit }) => ({
        ref,
        def,
        implicit,
      })),
      bindings: [...this.bindings.values()],
    };
  }

  /** Declare everything, in order. Stops at the first refusal with a TopologyError naming the entity. */
  async declare(session: AmqpSession): Promise<void> {
    for (const { def, implicit } of this.exchanges.values()) {
      if (implicit && (await this.exists(session, 'exchange', def.name))) continue;
      try {
        await session.exchangeDeclare(def.name, def.type, {
          durable: def.durable,
          autoDelete: def.autoDelete,
          internal: def.internal,
          arguments: def.arguments,
        });
      } catch (err) {
        throw topologyFailure(err, 'exchange', def.name);
      }
    }
    for (const q of [...this.queues.values(), ...this.serverNamed.values()]) {
      if (q.implicit && (await this.exists(session, 'queue', q.def.name))) continue;
      try {
        const result = await session.queueDeclare(q.def.name, queueOptions(q.def));
        q.ref.name = result.queue;
      } catch (err) {
        throw topologyFailure(err, 'queue', q.def.name || '(server-named)');
      }
    }
    const ordered = [...this.bindings.values()].sort((a, b) => Number(!!a.queue) - Number(!!b.queue));
    for (const b of ordered) {
      if (b.destinationExchange !== undefined) {
        try {
          await session.exchangeBind(b.destinationExchange, b.source, b.routingKey, b.arguments);
        } catch (err) {
          throw topologyFailure(err, 'exchange binding', `${b.source} -> ${b.destinationExchange}`);
        }
      } else if (b.queue) {
        try {
          await session.queueBind(b.queue.name, b.source, b.routingKey, b.arguments);
        } catch (err) {
          throw topologyFailure(err, 'binding', `${b.source} -> ${b.queue.name} (${b.routingKey})`);
        }
      }
    }
  }

  /** Passive declare: true if the entity exists, false on 404. */
  private async exists(session: AmqpSession, kind: 'exchange' | 'queue', name: string): Promise<boolean> {
    try {
      if (kind === 'exchange') await session.exchangeDeclare(name, 'topic', { passive: true });
      else await session.queueDeclare(name, { passive: true });
      return true;
    } catch (err) {
      if (err instanceof ChannelError && err.replyCode === ReplyCode.NOT_FOUND) return false;
      throw topologyFailure(err, kind, name);
    }
  }

  private queueKey(ref: QueueRef): string {
    if (!ref.serverNamed) return ref.name;
    let i = 0;
    for (const q of this.serverNamed.values()) {
      if (q.ref === ref) return `~server-named-${i}`;
      i++;
    }
    return '~server-named';
  }
}
