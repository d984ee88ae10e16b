/**
 * The rate limit on guest-caused log lines: a burst per kind and interval, then one summary with
 * the exact count suppressed; kinds apart; the kind table bounded.
 */
import { describe, expect, it } from 'vitest';
import { GuestLogLimiter, messageKind } from '../../root-partition/vmwp/guest-log-limiter.ts';

function rig(burst = 3, intervalMs = 1000, maxKinds = 4) {
  let t = 0;
  const lines: string[] = [];
  const limiter = new GuestLogLimiter(
    (l) => lines.push(l),
    { burst, intervalMs, maxKinds },
    () => t,
  );
  return {
    limiter,
    lines,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('guest log limiter', () => {
  it('passes a burst, suppresses the rest, and summarises them when the interval is over', () => {
    const { limiter, lines, advance } = rig();
    for (let i = 0; i < 100_000; i++) limiter.log(`vmbus VMBUS_BAD_MESSAGE: message ${i}`);
    expect(lines).toEqual(['vmbus VMBUS_BAD_MESSAGE: message 0', 'vmbus VMBUS_BAD_MESSAGE: message 1', 'vmbus VMBUS_BAD_MESSAGE: message 2']);
    expect(limiter.suppressed).toBe(99_997);
    limiter.flush();
    expect(lines).toHaveLength(3); // the interval is not over
    advance(1000);
    limiter.flush();
    expect(lines.slice(3)).toEqual(['vmbus VMBUS_BAD_MESSAGE: suppressed 99997 similar messages in the last 1 s']);
    // A new interval: a new burst.
    limiter.log('vmbus VMBUS_BAD_MESSAGE: again');
    expect(lines.at(-1)).toBe('vmbus VMBUS_BAD_MESSAGE: again');
  });

  it('the summary also comes with the first line of the next interval, and at the end with flush(all)', () => {
    const { limiter, lines, advance } = rig(1);
    limiter.log('storvsp relid 1: refused a');
    limiter.log('storvsp relid 1: refused b');
    advance(1500);
    limiter.log('storvsp relid 1: refused c');
    limiter.log('storvsp relid 1: refused d');
    limiter.flush(true);
    expect(lines).toEqual([
      'storvsp relid 1: refused a',
      'storvsp relid 1: suppressed 1 similar message in the last 2 s',
      'storvsp relid 1: refused c',
      'storvsp relid 1: suppressed 1 similar message in the last 0 s',
    ]);
  });

  it('kinds are limited apart, and kinds beyond the table size share one bucket', () => {
    const { limiter, lines } = rig(1, 1000, 2);
    limiter.log('a: 1');
    limiter.log('b: 1');
    limiter.log('a: 2');
    for (let i = 0; i < 1000; i++) limiter.log(`kind${i}: x`);
    expect(lines).toEqual(['a: 1', 'b: 1', 'kind0: x']);
    expect(limiter.suppressed).toBe(1 + 999);
    limiter.flush(true);
    expect(lines.at(-1)).toBe('(other): suppressed 999 similar messages in the last 0 s');
  });

  it('a message kind is what precedes the first colon, at most 64 characters', () => {
    expect(messageKind('vmbus VMBUS_BAD_MESSAGE: SynIC message type 2')).toBe('vmbus VMBUS_BAD_MESSAGE');
    expect(messageKind('no colon here')).toBe('no colon here');
    expect(messageKind('x'.repeat(100))).toHaveLength(64);
  });
});
