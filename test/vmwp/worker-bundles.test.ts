/**
 * The worker's bundles are used only while fresh: a change to any source a bundle holds makes it
 * stale (the worker then runs from its sources), and a rebuild makes it fresh again.
 */
import { statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundlePath, buildWorkerBundles, freshBundle } from '../../root-partition/vmwp/worker-bundles.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('worker bundles', () => {
  it('are used only while newer than every source they were built from', async () => {
    await buildWorkerBundles();
    expect(freshBundle('vmwp')).toBe(bundlePath('vmwp'));
    expect(freshBundle('device-thread')).toBe(bundlePath('device-thread'));
    // A source both bundles hold, edited after the build (its mtime moved past the bundle's).
    const source = join(ROOT, 'root-partition', 'vmwp', 'device-requests.ts');
    const { atime, mtime } = statSync(source);
    // Past both bundles: one may have been rebuilt long after the other (a source only it holds changed).
    const later = new Date(Math.max(statSync(bundlePath('vmwp')).mtimeMs, statSync(bundlePath('device-thread')).mtimeMs) + 60_000);
    try {
      utimesSync(source, later, later);
      expect(freshBundle('vmwp')).toBeNull();
      expect(freshBundle('device-thread')).toBeNull();
    } finally {
      utimesSync(source, atime, mtime);
    }
    expect(freshBundle('vmwp')).toBe(bundlePath('vmwp'));
  });

  it('can be switched off', async () => {
    process.env.TSVISOR_WORKER_BUNDLES = '0';
    try {
      expect(freshBundle('vmwp')).toBeNull();
    } finally {
      delete process.env.TSVISOR_WORKER_BUNDLES;
    }
  });
});
