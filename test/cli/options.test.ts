// Option values: durations past what Node's timers can wait (2^31-1 ms; a longer delay fires at
// once, which took an epoch after every change) are refused, not silently shortened.
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/options.js';

describe('parseDuration', () => {
  const parse = parseDuration('--epoch-interval');

  it('reads ms, s, m, h and d', () => {
    expect([parse('500ms'), parse('30'), parse('5m'), parse('1h'), parse('2d'), parse('24d')]).toEqual([500, 30_000, 300_000, 3_600_000, 172_800_000, 24 * 86_400_000]);
  });

  it('refuses what a timer cannot wait for (exit 2)', () => {
    for (const v of ['1000h', '25d', '596.6h', `${2 ** 31}ms`]) {
      expect(() => parse(v), v).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/at most 24d/) }));
    }
    expect(() => parse('5ms')).toThrow(/at least 10ms/);
  });
});
