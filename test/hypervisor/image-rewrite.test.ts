/**
 * The load-time rewrite (hypervisor/rewrite/): results identical to the unmodified image, the
 * prepared-image cache, and a corpus of hostile images refused cleanly and in bounded time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGuestImage } from '../../hypervisor/image-loader.ts';
import { forgetPreparedModules } from '../../hypervisor/rewrite/prepared-image-cache.ts';
import { DEFAULT_REWRITE, isRewritten, NO_REWRITE, PREEMPTIBLE_REWRITE } from '../../hypervisor/rewrite/rewrite-abi.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { bootTestGuest } from '../helpers/guest-partition.ts';
import { buildModule, nestedBlocks } from '../helpers/wasm-builder.ts';

const LOOP = Uint8Array.from([0x03, 0x40, 0x0c, 0x00, 0x0b]); // loop br 0 end: spins forever

async function kernelResult(kernel: number, n: number, rewrite: typeof DEFAULT_REWRITE): Promise<{ sum: number; preemptions: number }> {
  const g = await bootTestGuest('cpu-kernels', `kernel=${kernel} n=${n}`, { config: { rewrite } });
  try {
    await g.waitFor('t=', 30_000);
    await g.partition.whenIdle();
    return { sum: g.values().sum, preemptions: g.partition.counters(0).PreemptionExits };
  } finally {
    await g.dispose();
  }
}

describe('image rewrite', () => {
  it('gives every compute kernel the result of the unmodified image', async () => {
    for (const [kernel, n] of [
      [1, 2],
      [2, 1],
      [3, 4],
      [4, 20],
      [5, 4],
    ]) {
      const plain = await kernelResult(kernel, n, NO_REWRITE);
      const rewritten = await kernelResult(kernel, n, DEFAULT_REWRITE);
      expect(rewritten.sum, `kernel ${kernel}`).toBe(plain.sum);
      expect(plain.preemptions).toBe(0);
      expect(rewritten.preemptions, `kernel ${kernel}`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('rewrites every built guest image into a module with preemption points', async () => {
    await buildGuests();
    const dir = join(guestImagePath('hello'), '..');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.wasm'))) {
      const image = loadGuestImage(readFileSync(join(dir, f)));
      expect(isRewritten(image.module), f).toBe(true);
      expect(image.exports.map((e) => e.name)).not.toContain('__tsvisor_irq'); // the image's own exports, as built
    }
  }, 120_000);
});

describe('prepared-image cache', () => {
  let dir: string;
  const saved = process.env.TSVISOR_IMAGE_CACHE;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsvisor-image-cache-'));
    process.env.TSVISOR_IMAGE_CACHE = dir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.TSVISOR_IMAGE_CACHE;
    else process.env.TSVISOR_IMAGE_CACHE = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores one entry per image and options, and rewrites a damaged entry again', () => {
    const bytes = buildModule({ bodies: [LOOP] });
    loadGuestImage(bytes);
    const entries = readdirSync(dir).filter((n) => n.endsWith('.wasm'));
    expect(entries).toHaveLength(1);
    const good = readFileSync(join(dir, entries[0]));
    writeFileSync(join(dir, entries[0]), good.subarray(0, 20)); // truncated by a crash, say
    forgetPreparedModules();
    expect(isRewritten(loadGuestImage(bytes).module)).toBe(true);
    expect(readFileSync(join(dir, entries[0]))).toEqual(good); // rewritten and stored again
    loadGuestImage(bytes, { rewrite: NO_REWRITE });
    loadGuestImage(buildModule({ bodies: [LOOP, LOOP] }));
    expect(readdirSync(dir).filter((n) => n.endsWith('.wasm'))).toHaveLength(2); // unmodified images are not cached
  }, 60_000);
});

describe('hostile images', () => {
  const refuses = (bytes: Uint8Array, why: RegExp, opts = {}) => {
    const t = performance.now();
    expect(() => loadGuestImage(bytes, opts)).toThrow(why);
    return performance.now() - t;
  };

  it('refuses an oversized image before parsing it', () => {
    const huge = new Uint8Array(33 * 1024 * 1024);
    huge.set([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    expect(refuses(huge, /more than the 33554432 bytes an image may have/)).toBeLessThan(1000);
  });

  it('refuses malformed and truncated modules with the validator’s reason', () => {
    const good = buildModule({ bodies: [LOOP] });
    refuses(good.subarray(0, good.length - 3), /not a valid WebAssembly module/);
    const garbage = Uint8Array.from(good);
    garbage.fill(0xff, good.length - 6, good.length - 1);
    refuses(garbage, /not a valid WebAssembly module/);
  });

  it('refuses an image that imports from the module reserved for the hypervisor', () => {
    refuses(buildModule({ imports: [['tsvisor', 'preempt']], bodies: [LOOP] }), /"tsvisor", a module name reserved for the hypervisor/);
  }, 60_000);

  it('handles pathological nesting in bounded time — refused cleanly or rewritten — and the host loads the next image', () => {
    // Preemption points alone: the rewriter's walk runs out of stack and the image is refused.
    const ms = refuses(buildModule({ bodies: [nestedBlocks(100_000)] }), /guest image refused/, { rewrite: PREEMPTIBLE_REWRITE });
    expect(ms).toBeLessThan(60_000);
    // The default (capturable) flattens the code first (Asyncify), so the same image is prepared.
    const t = performance.now();
    expect(isRewritten(loadGuestImage(buildModule({ bodies: [nestedBlocks(100_000)] })).module)).toBe(true);
    expect(performance.now() - t).toBeLessThan(60_000);
    expect(isRewritten(loadGuestImage(buildModule({ bodies: [LOOP] })).module)).toBe(true);
  }, 180_000);

  it('terminates a rewrite that overruns its time bound and refuses the image', () => {
    const ms = refuses(buildModule({ bodies: [nestedBlocks(50), LOOP, LOOP, LOOP] }), /took longer than 20 ms/, { rewriteTimeoutMs: 20 });
    expect(ms).toBeLessThan(2000);
  });
});
