import fc from 'fast-check';
import { inspect } from 'node:util';
import { ConfigError } from '../../lib/amqp/errors';
import { redactUrl } from '../../lib/amqp/redact';
import { parseAmqpUrl, resolveConnectionOptions } from '../../lib/amqp/url';

/** Password characters, the URL delimiters among them. */
const PASSWORD_CHARS = ['@', ':', '/', '%', '?', '#', ',', '[', ']', ' ', 'a', 'Z', '9', 'é', '+', '='];
const password = (minLength = 1): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...PASSWORD_CHARS), minLength, maxLength: 24 });

describe('redactUrl', () => {
  it('hides any raw password, whatever delimiters it holds', () => {
    fc.assert(
      fc.property(password(0), (pw) => {
        expect(redactUrl(`amqp://user:${pw}@host:5672/vh`)).toBe('amqp://user:***@host:5672/vh');
      }),
      { numRuns: 2000 },
    );
  });

  it('hides any percent-encoded password and keeps the rest of the URL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), (pw) => {
        const url = `amqps://user:${encodeURIComponent(pw)}@h1:5701,[::1]:5702/vh?heartbeat=5`;
        expect(redactUrl(url)).toBe('amqps://user:***@h1:5701,[::1]:5702/vh?heartbeat=5');
      }),
    );
  });

  it('hides the password of a URL without a host part', () => {
    fc.assert(
      fc.property(password(0), (pw) => {
        expect(redactUrl(`amqp://user:${pw}@`)).toBe('amqp://user:***@');
      }),
    );
  });

  it('hides the password of a URL whose host was forgotten (no @)', () => {
    const noAt = fc.string({ unit: fc.constantFrom(...PASSWORD_CHARS.filter((c) => c !== '@')), maxLength: 24 });
    fc.assert(
      // Starting with a delimiter or a digit it would read as a port (`amqp://user:1234`, `amqp://user:/vh`).
      fc.property(fc.constantFrom('a', 'Z', 'é', '%', '+'), noAt, (first, more) => {
        const pw = first + more;
        expect(redactUrl(`amqp://user:${pw}`)).toBe('amqp://user:***');
      }),
    );
  });

  it.each([
    ['amqp://user:@/@host', 'amqp://user:***@host'],
    ['amqp://user:p@ss/word@host/vh', 'amqp://user:***@host/vh'],
    ['amqp://user:p@ss?x@host', 'amqp://user:***@host'],
    ['amqp://user:secret', 'amqp://user:***'],
    ['amqp://user:secret/vh', 'amqp://user:***'],
    ['amqp://user:secret@', 'amqp://user:***@'],
    ['amqp://host:5672', 'amqp://host:5672'],
    ['amqp://h1:5701,h2:5702/vh', 'amqp://h1:5701,h2:5702/vh'],
    ['amqp://[::1]:5672', 'amqp://[::1]:5672'],
    ['amqp://u:p@h1:5701,h2:5702/vh', 'amqp://u:***@h1:5701,h2:5702/vh'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});

describe('URL parse errors', () => {
  /** A password unlikely to appear in a message by chance: marked at both ends. */
  const marked = password(0).map((pw) => `Qx7${pw}Jk4`);

  function errorOf(fn: () => unknown): ConfigError | undefined {
    try {
      fn();
      return undefined;
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
  }

  it('never contain the password, whatever delimiters it holds', () => {
    fc.assert(
      fc.property(marked, fc.constantFrom('', '/vh', '/?heartbeat=5', ':5672'), (pw, tail) => {
        const url = `amqp://user:${pw}@host${tail}`;
        for (const err of [
          errorOf(() => parseAmqpUrl(url)),
          errorOf(() => resolveConnectionOptions(['amqp://a', url])),
        ]) {
          if (err === undefined) continue;
          expect(err.message).not.toContain(pw);
          expect(inspect(err)).not.toContain(pw);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never contain the password of a URL whose host was forgotten', () => {
    fc.assert(
      fc.property(marked, (pw) => {
        const err = errorOf(() => parseAmqpUrl(`amqp://user:${pw}`));
        expect(err?.message ?? '').not.toContain(pw);
      }),
    );
  });

  it('percent-encoded passwords round-trip', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), (pw) => {
        expect(parseAmqpUrl(`amqp://user:${encodeURIComponent(pw)}@host`).endpoint.password).toBe(pw);
      }),
    );
  });
});
