/**
 * Long disk work stopped at a safe point (storage/disk-job.ts), on real files: a conversion
 * removes its new file, a compaction its copy, and a merge keeps the child linked to its parent's
 * new identity — the child reads as before, the merge can be run again and completes; the
 * source of each is unchanged. And `tsvisor disk convert` interrupted with Ctrl-C (SIGINT) stops
 * the same way, exit status 130.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskJobCancelled, runCancellable, runSteps } from '../../root-partition/storage/disk-job.ts';
import { compactSteps, convertSteps, mergeSteps, newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsv-disk-job-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Writes `byte` over [at, at + length) of the image and the model. */
function fill(path: string, model: Buffer, at: number, length: number, byte: number): void {
  const d = openDisk(path, { lock: false });
  d.write(at / 512, Buffer.alloc(length, byte));
  d.close();
  model.fill(byte, at, at + length);
}

function readAll(path: string): Buffer {
  const d = openDisk(path, { readOnly: true, lock: false });
  const b = Buffer.alloc(d.sectorCount * 512);
  d.read(0, b);
  d.close();
  return b;
}

/** An abort after the work's first safe point: the signal and a progress callback that pulls it. */
function stopAfterFirstStep(): { signal: AbortSignal; progress: () => void } {
  const stop = new AbortController();
  return { signal: stop.signal, progress: () => stop.abort() };
}

describe('disk work stopped at a safe point', () => {
  it('a conversion removes its new file; a compaction its copy; the sources are unchanged', async () => {
    const src = join(dir, 'src.vhdx');
    const model = Buffer.alloc(SIZE);
    newDisk(src, { kind: 'dynamic', sizeBytes: SIZE, blockSizeBytes: MiB });
    for (let i = 0; i < 3; i++) fill(src, model, i * 5 * MiB, MiB, 0x11 * (i + 1));
    const before = sha(src);
    const dst = join(dir, 'dst.vhdx');
    const c = stopAfterFirstStep();
    const e = await runCancellable(convertSteps(src, dst, { progress: c.progress }), c.signal, 'the conversion').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DiskJobCancelled);
    expect((e as Error).message).toBe(`the conversion of ${src} was cancelled: ${dst} was removed, ${src} is unchanged`);
    expect(existsSync(dst)).toBe(false);
    expect(sha(src)).toBe(before);

    const k = stopAfterFirstStep();
    await expect(runCancellable(compactSteps(src, k.progress), k.signal)).rejects.toThrow(`compacting ${src} was cancelled: the file is as it was`);
    expect(readdirSync(dir)).toEqual(['src.vhdx']);
    expect(sha(src)).toBe(before);
    // Not cancelled, the same steps run to their end.
    await runCancellable(convertSteps(src, dst), new AbortController().signal);
    expect(readAll(dst).equals(model)).toBe(true);
  });

  it("a merge keeps its child, linked to the parent's new identity and reading as before; run again, it completes", async () => {
    const base = join(dir, 'base.vhdx');
    const child = join(dir, 'child.avhdx');
    const model = Buffer.alloc(SIZE);
    newDisk(base, { kind: 'dynamic', sizeBytes: SIZE, blockSizeBytes: MiB });
    fill(base, model, 0, 4 * MiB, 0xb0);
    newDisk(child, { kind: 'differencing', parentPath: base, blockSizeBytes: MiB });
    for (let i = 0; i < 3; i++) fill(child, model, i * 5 * MiB + 4096, MiB + 512, 0xc1 + i);
    const baseModel = readAll(base);
    const m = stopAfterFirstStep();
    const e = await runCancellable(mergeSteps(child, m.progress), m.signal).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DiskJobCancelled);
    expect((e as Error).message).toBe(`the merge of ${child} was cancelled: ${child} is kept and reads as before; ${resolve(base)} holds part of its data`);
    expect(existsSync(child)).toBe(true);
    // The parent took some of the child's sectors and a new identity; the child links to it.
    const p = openVhdx(base, { readOnly: true, lock: false });
    const c = openVhdx(child, { readOnly: true, lock: false });
    expect(c.layout.meta.locator!.get('parent_linkage')).toBe(`{${p.identifier}}`);
    c.close();
    p.close();
    expect(readAll(base).equals(baseModel)).toBe(false);
    expect(readAll(child).equals(model)).toBe(true);
    runSteps(mergeSteps(child));
    expect(existsSync(child)).toBe(false);
    expect(readAll(base).equals(model)).toBe(true);
  });

  it('tsvisor disk convert stops on Ctrl-C: exit 130, the new file removed', { timeout: 60_000 }, async () => {
    // 1 TiB with no data: the copy would take minutes, so the interrupt always comes mid-copy.
    const src = join(dir, 'huge.vhdx');
    newDisk(src, { kind: 'dynamic', sizeBytes: 1024 * 1024 * MiB });
    const before = sha(src);
    const dst = join(dir, 'out.vhdx');
    const bin = resolve(import.meta.dirname, '../../bin/tsvisor.mjs');
    const cli = spawn(process.execPath, [bin, 'disk', 'convert', src, dst], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    cli.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((res) => cli.on('exit', (code) => res(code)));
    try {
      for (const deadline = Date.now() + 45_000; !existsSync(dst); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`the conversion did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200)); // well into the copy
      cli.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      cli.kill('SIGKILL');
    }
    expect(stderr).toContain('stopping the conversion at the next safe point');
    expect(stderr).toContain(`HV_ERR_DISK_JOB_CANCELLED: the conversion of ${src} was cancelled: ${dst} was removed, ${src} is unchanged`);
    expect(existsSync(dst)).toBe(false);
    expect(sha(src)).toBe(before);
  });
});
