/**
 * Patterns and routing keys. A Nest pattern becomes the AMQP routing key: a string (or number) as is, an object as
 * JSON with its keys sorted at every level, so `{ cmd: 'sum', v: 1 }` and `{ v: 1, cmd: 'sum' }` are the same key.
 * Handler patterns may use topic wildcards: `*` matches exactly one dot-separated word, `#` zero or more.
 */

/** The routing key for a pattern. */
export function routingKeyFromPattern(pattern: unknown): string {
  if (typeof pattern === 'string') return pattern;
  if (typeof pattern === 'number' || typeof pattern === 'boolean' || typeof pattern === 'bigint')
    return String(pattern);
  if (pattern === null || pattern === undefined) return '';
  return stableStringify(pattern);
}

function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const json = JSON.stringify(value);
    return json === undefined ? 'null' : json;
  }
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(record[k])}`).join(',')}}`;
}

/** Whether a handler pattern contains a topic wildcard word (`*` or `#`). */
export function isWildcardPattern(pattern: string): boolean {
  return pattern.split('.').some((word) => word === '*' || word === '#');
}

function specificity(pattern: string): [number, number, number] {
  const words = pattern.split('.');
  return [words.filter((w) => w === '#').length, words.filter((w) => w === '*').length, -words.length];
}

function compareSpecificity(a: string, b: string): number {
  const sa = specificity(a);
  const sb = specificity(b);
  for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return sa[i] - sb[i];
  return 0;
}

/** Topic matching as RabbitMQ does it: words split on `.`; `*` is exactly one word, `#` zero or more. */
export function matchesTopic(pattern: string, routingKey: string): boolean {
  return matchWords(words(pattern), 0, words(routingKey), 0);
}

/** RabbitMQ reads an empty key as zero words (so `*` does not match it, `#` does). */
function words(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

function matchWords(p: string[], i: number, k: string[], j: number): boolean {
  for (;;) {
    if (i === p.length) return j === k.length;
    const word = p[i];
    if (word === '#') {
      // Collapse consecutive '#'; then try every split point.
      while (i + 1 < p.length && p[i + 1] === '#') i++;
      if (i + 1 === p.length) return true;
      for (let skip = j; skip <= k.length; skip++) if (matchWords(p, i + 1, k, skip)) return true;
      return false;
    }
    if (j === k.length) return false;
    if (word !== '*' && word !== k[j]) return false;
    i++;
    j++;
  }
}

/**
 * Routes of one queue. An exact pattern always wins; then wildcard patterns, most specific first: fewer `#`, then
 * fewer `*`, then more words (declaration order breaks ties). So with `audit.*.created` and `audit.#`, the routing key
 * `audit.user.created` goes to the first.
 */
export class PatternMatcher<T> {
  private readonly exact = new Map<string, T>();
  private readonly wildcards: Array<{ pattern: string; value: T }> = [];

  add(pattern: string, value: T): void {
    if (!isWildcardPattern(pattern)) {
      this.exact.set(pattern, value);
      return;
    }
    this.wildcards.push({ pattern, value });
    // Array.prototype.sort is stable: equal specificity keeps declaration order.
    this.wildcards.sort((a, b) => compareSpecificity(a.pattern, b.pattern));
  }

  get(pattern: string): T | undefined {
    if (isWildcardPattern(pattern)) return this.wildcards.find((w) => w.pattern === pattern)?.value;
    return this.exact.get(pattern);
  }

  match(routingKey: string): T | undefined {
    const hit = this.exact.get(routingKey);
    if (hit !== undefined) return hit;
    for (const w of this.wildcards) if (matchesTopic(w.pattern, routingKey)) return w.value;
    return undefined;
  }

  values(): T[] {
    return [...this.exact.values(), ...this.wildcards.map((w) => w.value)];
  }

  get size(): number {
    return this.exact.size + this.wildcards.length;
  }
}
