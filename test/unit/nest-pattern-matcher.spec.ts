import { matchesTopic, PatternMatcher, routingKeyFromPattern } from '../../lib/nest/routing/pattern-matcher';

describe('routing keys from Nest patterns', () => {
  it('keeps strings, stringifies numbers, sorts object keys at every level', () => {
    expect(routingKeyFromPattern('order.created')).toBe('order.created');
    expect(routingKeyFromPattern(42)).toBe('42');
    expect(routingKeyFromPattern({ v: 1, cmd: 'sum' })).toBe('{"cmd":"sum","v":1}');
    expect(routingKeyFromPattern({ b: { y: 1, x: [2, { d: 1, c: 2 }] }, a: 'z' })).toBe(
      '{"a":"z","b":{"x":[2,{"c":2,"d":1}],"y":1}}',
    );
  });
});

describe('topic matching', () => {
  it.each([
    ['a.b.c', 'a.b.c', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.c', false],
    ['a.*', 'a.b.c', false],
    ['a.#', 'a', true],
    ['a.#', 'a.b.c', true],
    ['#', '', true],
    ['#', 'a.b', true],
    ['#.c', 'c', true],
    ['#.c', 'a.b.c', true],
    ['#.c', 'a.b.d', false],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.x.y.c', true],
    ['a.#.#.c', 'a.x.c', true],
    ['*.#', '', false],
    ['*', '', false],
    ['', '', true],
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
    ['a.b*', 'a.bx', false],
  ])('%s matches %s: %s', (pattern, key, expected) => {
    expect(matchesTopic(pattern, key)).toBe(expected);
  });

  it('exact beats wildcards; the most specific wildcard wins', () => {
    const m = new PatternMatcher<string>();
    m.add('audit.#', 'hash');
    m.add('audit.*.created', 'star');
    m.add('audit.user.deleted', 'exact');
    expect(m.match('audit.user.deleted')).toBe('exact');
    expect(m.match('audit.user.created')).toBe('star');
    expect(m.match('audit.user.updated')).toBe('hash');
    expect(m.match('audit')).toBe('hash');
    expect(m.match('other')).toBeUndefined();
  });
});
