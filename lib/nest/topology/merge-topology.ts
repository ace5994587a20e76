import type { TopologyDefinition } from './topology.interface';

/** Both definitions' entities, `a`'s first. */
export function mergeTopology(...parts: Array<TopologyDefinition | undefined>): TopologyDefinition {
  const out: Required<TopologyDefinition> = { exchanges: [], queues: [], bindings: [], exchangeBindings: [] };
  for (const p of parts) {
    if (!p) continue;
    out.exchanges.push(...(p.exchanges ?? []));
    out.queues.push(...(p.queues ?? []));
    out.bindings.push(...(p.bindings ?? []));
    out.exchangeBindings.push(...(p.exchangeBindings ?? []));
  }
  return out;
}
