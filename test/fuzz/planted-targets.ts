/**
 * Targets with planted bugs, for testing the fuzzer itself: each bug is reachable only the way
 * its test says (a byte sequence only coverage feedback finds in time, an endless loop, a
 * growing heap, a slow input).
 */
import type { FuzzTarget } from '../../fuzz/engine/target.ts';

/** The declared refusal of the planted targets. */
export class PlantedRefusal extends Error {}

const base = (name: string): Omit<FuzzTarget, 'run'> => ({
  name,
  description: `planted: ${name}`,
  maxInputBytes: 64,
  seeds: () => [Uint8Array.of(0x41, 0x41, 0x41)],
  isExpectedError: (e) => e instanceof PlantedRefusal,
});

/** A TypeError behind three nested byte comparisons ("FUZ"); everything else is refused or passes. */
export function createMagic(): FuzzTarget {
  return {
    ...base('magic'),
    run(input) {
      if (input.length < 3) throw new PlantedRefusal('short');
      if (input[0] === 0x46) {
        if (input[1] === 0x55) {
          if (input[2] === 0x5a) (null as unknown as { x: number }).x = 1;
        }
      }
    },
  };
}

export function createHang(): FuzzTarget {
  return {
    ...base('hang'),
    seeds: () => [Uint8Array.of(0x41), Uint8Array.of(0x42, 0x43)],
    run(input) {
      if (input[0] === 0x42) for (;;);
    },
  };
}

/** Leaks 16 MiB of ArrayBuffer per input that starts with 'M' (outside the V8 heap limit). */
export function createLeak(): FuzzTarget {
  const kept: Uint8Array[] = [];
  return {
    ...base('leak'),
    seeds: () => [Uint8Array.of(0x4d)],
    run(input) {
      if (input[0] === 0x4d) kept.push(new Uint8Array(16 << 20).fill(1));
    },
  };
}

/** Grows the V8 heap without end on 'H': only the worker's heap limit stops it. */
export function createHeapGrowth(): FuzzTarget {
  const kept: unknown[] = [];
  return {
    ...base('heap'),
    seeds: () => [Uint8Array.of(0x48)],
    run(input) {
      if (input[0] === 0x48) for (let i = 0; ; i++) kept.push({ i, s: `${i}` });
    },
  };
}

export function createSlow(): FuzzTarget {
  return {
    ...base('slow'),
    seeds: () => [Uint8Array.of(0x41, 0x41, 0x53, 0x41)],
    run(input) {
      if (input.includes(0x53)) {
        const end = performance.now() + 300;
        while (performance.now() < end);
      }
    },
  };
}
