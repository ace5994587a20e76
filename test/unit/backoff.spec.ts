import fc from 'fast-check';
import { BACKOFF_DEFAULTS, backoffDelay, type BackoffOptions } from '../../lib/amqp/backoff';

const policy = (o: BackoffOptions = {}): Required<BackoffOptions> => ({ ...BACKOFF_DEFAULTS, ...o });

/** The largest value Math.random() can return. */
const ALMOST_ONE = 1 - Number.EPSILON;

describe('backoffDelay (exponential backoff, full jitter)', () => {
  it('has the documented defaults: 100 ms first ceiling, 1000 ms cap, unlimited attempts', () => {
    expect(BACKOFF_DEFAULTS).toEqual({ initialDelayMs: 100, maxDelayMs: 1000, maxAttempts: Infinity });
  });

  it('full jitter: a random draw of 0 gives no delay at all, whatever the attempt', () => {
    for (const attempt of [1, 2, 5, 10, 100]) expect(backoffDelay(attempt, policy(), () => 0)).toBe(0);
  });

  it('the ceiling doubles with every attempt, starting from initialDelayMs', () => {
    const o = policy({ initialDelayMs: 100, maxDelayMs: 1_000_000 });
    const ceilings = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, o, () => ALMOST_ONE) + 1);
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 3200]);
    // The jitter is proportional: half the draw is half the ceiling.
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, o, () => 0.5))).toEqual([50, 100, 200, 400]);
  });

  it('the ceiling is capped at maxDelayMs, even for absurd attempt numbers', () => {
    const o = policy({ initialDelayMs: 100, maxDelayMs: 1000 });
    expect([4, 5, 6, 20, 31, 32, 1000, 1e9].map((n) => backoffDelay(n, o, () => ALMOST_ONE))).toEqual([
      799, 999, 999, 999, 999, 999, 999, 999,
    ]);
    expect(backoffDelay(1e9, o, () => 0.5)).toBe(500);
  });

  it('property: an integer in [0, min(max, initial × 2^(attempt-1))) for any policy and draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: ALMOST_ONE, noNaN: true }),
        (attempt, initialDelayMs, maxDelayMs, draw) => {
          const d = backoffDelay(attempt, policy({ initialDelayMs, maxDelayMs }), () => draw);
          const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThan(ceiling);
          expect(d).toBe(Math.floor(draw * ceiling));
        },
      ),
    );
  });

  it('property: the ceiling never shrinks as attempts grow (monotone growth up to the cap)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 5000 }), (attempt, initialDelayMs) => {
        const o = policy({ initialDelayMs, maxDelayMs: 30_000 });
        const at = (n: number): number => backoffDelay(n, o, () => ALMOST_ONE);
        expect(at(attempt + 1)).toBeGreaterThanOrEqual(at(attempt));
      }),
    );
  });

  it('uses Math.random by default: delays are spread over the whole window, not fixed', () => {
    const o = policy({ initialDelayMs: 100, maxDelayMs: 1000 });
    const samples = Array.from({ length: 2000 }, () => backoffDelay(10, o));
    for (const d of samples) {
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(1000);
    }
    // With 2000 uniform draws each quarter of the window is hit (failure odds ~ 4 × 0.75^2000).
    for (let q = 0; q < 4; q++) expect(samples.some((d) => d >= q * 250 && d < (q + 1) * 250)).toBe(true);
    expect(new Set(samples).size).toBeGreaterThan(100);
  });
});
