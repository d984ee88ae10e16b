/**
 * The fuzzer finds what it claims to find: a bug behind byte comparisons (coverage feedback
 * needed), an endless loop (the supervisor's watchdog), a heap beyond the bound (the worker's
 * resource limit), a slow input; and it minimises what it found.
 */
import { describe, expect, it } from 'vitest';
import { runSupervised, type SupervisedOptions } from '../../fuzz/engine/supervisor.ts';

const PLANTED = new URL('./planted-targets.ts', import.meta.url).href;

const run = (exportName: string, extra: Partial<SupervisedOptions> = {}) =>
  runSupervised({
    targetModule: PLANTED,
    exportName,
    timeMs: 20_000,
    seed: 7,
    slowMs: 2000,
    hangMs: 1500,
    memoryMb: 64,
    maxInputBytes: 64,
    corpusDir: null,
    regressionsDir: null,
    saveDir: null,
    maxCorpus: 64,
    coverageAlso: PLANTED,
    ...extra,
  });

describe('fuzz engine', () => {
  it('finds a bug behind three byte comparisons by coverage feedback, minimised to the three bytes', async () => {
    const r = await run('createMagic', { maxExecs: 100_000, stopOnFinding: true });
    expect(r.findings.map((f) => [f.kind, f.summary.split(':')[0]])).toEqual([['crash', 'TypeError']]);
    expect(Buffer.from(r.findings[0]!.minimised).toString('latin1')).toBe('FUZ');
    expect(r.refusals).toBeGreaterThan(0);
    expect(r.corpusSize).toBeGreaterThanOrEqual(3); // '?', 'F', 'FU' at least: each added a block
  }, 120_000);

  it('names the input of an endless loop and ends the worker', async () => {
    const r = await run('createHang');
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]!.kind).toBe('hang');
    expect([...r.findings[0]!.input]).toEqual([0x42, 0x43]);
  }, 120_000);

  it('names the input after which the thread holds more than the bound (ArrayBuffers included)', async () => {
    const r = await run('createLeak', { memoryMb: 128 });
    expect(r.findings.map((f) => f.kind)).toEqual(['memory']);
    expect(r.findings[0]!.input[0]).toBe(0x4d);
  }, 120_000);

  it('names the input that runs the V8 heap into the worker limit', async () => {
    const r = await run('createHeapGrowth', { hangMs: 40_000, memoryMb: 48 });
    expect(r.findings.map((f) => f.kind)).toEqual(['memory']);
    expect([...r.findings[0]!.input]).toEqual([0x48]);
  }, 120_000);

  it('reports a slow input and minimises it to the byte that makes it slow', async () => {
    const r = await run('createSlow', { slowMs: 150, timeMs: 0 });
    expect(r.findings.map((f) => f.kind)).toEqual(['slow']);
    expect([...r.findings[0]!.minimised]).toEqual([0x53]);
  }, 120_000);
});
