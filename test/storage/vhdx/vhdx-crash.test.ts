/**
 * Crash consistency of VHDX metadata updates: a writer child is killed (SIGKILL, nothing more
 * reaches the file) at every step of the update — the session's header update, the data
 * written before its flush, the log entry written and flushed, the header naming the log, the
 * metadata written in place and flushed, the header clearing the log — for a dynamic disk and for
 * a differencing disk (bitmap and BAT in one transaction). Each time the file must reopen (the
 * log replayed where it was live), every write the child saw flushed must read back exactly,
 * the write in flight must read as either all old or all new, and qemu-img must find the
 * dynamic file consistent.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVhdx } from '../../../root-partition/storage/vhdx/vhdx-create.ts';
import { VHDX_FAULT_POINTS } from '../../../root-partition/storage/vhdx/vhdx-fault-point.ts';
import { openVhdx } from '../../../root-partition/storage/vhdx/vhdx-open.ts';
import { CRASH_BLOCK, CRASH_BLOCKS, CRASH_DISK, CRASH_WRITES, crashWrite } from './vhdx-crash-plan.ts';

const _MiB = 1024 * 1024;
const WRITER = path.join(import.meta.dirname, 'vhdx-crash-writer.ts');
const qemu = spawnSync('sh', ['-c', 'command -v qemu-img']).status === 0;

let dir: string;
let writer: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-vhdx-crash-'));
  // One bundle for the writer children: plain node starts in a fraction of tsx's time.
  writer = path.join(dir, 'writer.mjs');
  buildSync({ entryPoints: [WRITER], outfile: writer, bundle: true, format: 'esm', platform: 'node', logLevel: 'silent' });
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The parent's content in a differencing test: a pattern in the blocks the test looks at. */
const parentByte = (off: number) => (Math.floor(off / 512) * 7 + 1) & 0xff;

function crashAt(kind: 'dynamic' | 'differencing', point: string): void {
  const tag = `${kind}-${point.replace(/\W/g, '-')}`;
  const image = path.join(dir, `${tag}.vhdx`);
  let parentContent: (off: number) => number = () => 0;
  if (kind === 'differencing') {
    const base = path.join(dir, `${tag}-base.vhdx`);
    createVhdx(base, { type: 'dynamic', sizeBytes: CRASH_DISK, blockSizeBytes: CRASH_BLOCK });
    const b = openVhdx(base);
    const block = new Uint8Array(CRASH_BLOCK);
    for (const n of CRASH_BLOCKS) {
      for (let i = 0; i < block.length; i++) block[i] = parentByte(n * CRASH_BLOCK + i);
      b.write((n * CRASH_BLOCK) / 512, block);
    }
    b.close();
    createVhdx(image, { type: 'differencing', parentPath: base, blockSizeBytes: CRASH_BLOCK });
    parentContent = parentByte;
  } else {
    createVhdx(image, { type: 'dynamic', sizeBytes: CRASH_DISK, blockSizeBytes: CRASH_BLOCK });
  }
  // The session header update happens once, in the first write. The log steps are hit in the
  // second write (two BAT sectors), after a flushed first; a dynamic disk's first write has a
  // single metadata sector, so its first partly-applied transaction is the second write's.
  const nth = point === 'session:header-1' || (point === 'log:applied-partly' && kind === 'dynamic') ? 1 : 2;
  const r = spawnSync(process.execPath, [writer, image], {
    env: { ...process.env, TSVISOR_VHDX_FAULT_POINT: `${point}@${nth}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.signal, `${tag}: ${r.stderr}`).toBe('SIGKILL');
  const flushed = [...r.stdout.matchAll(/flushed (\d+)/g)].map((m) => Number(m[1]));
  const lastFlushed = flushed.length ? Math.max(...flushed) : -1;
  expect(lastFlushed).toBe(point === 'session:header-1' ? -1 : 0);

  const d = openVhdx(image); // read-write: replays a live log
  const view = new Uint8Array(CRASH_DISK);
  for (const n of CRASH_BLOCKS) d.read((n * CRASH_BLOCK) / 512, view.subarray(n * CRASH_BLOCK, (n + 1) * CRASH_BLOCK));
  const written: [number, number][] = [];
  for (let i = 0; i < CRASH_WRITES; i++) {
    const { lba, data } = crashWrite(i);
    const at = lba * 512;
    written.push([at, at + data.length]);
    const got = view.subarray(at, at + data.length);
    const isNew = got.every((x) => x === data[0]);
    const isOld = got.every((x, k) => x === parentContent(at + k));
    if (i <= lastFlushed) expect(isNew, `${tag}: flushed write ${i} lost`).toBe(true);
    else expect(isNew || isOld, `${tag}: write ${i} torn`).toBe(true);
  }
  // Everything else is untouched: zeros, or the parent's bytes.
  for (const n of CRASH_BLOCKS) {
    for (let off = n * CRASH_BLOCK; off < (n + 1) * CRASH_BLOCK; off += 512) {
      if (written.some(([from, to]) => off >= from && off < to)) continue;
      if (view[off] !== parentContent(off)) expect(view[off], `${tag}: byte ${off}`).toBe(parentContent(off));
    }
  }
  // The disk takes writes again after the crash.
  d.write((7 * CRASH_BLOCK) / 512, new Uint8Array(512).fill(0xee));
  d.close();
  if (kind === 'dynamic' && qemu) {
    const c = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
    expect(c.status, `${tag}: ${c.stdout}${c.stderr}`).toBe(0);
  }
}

describe('VHDX crash consistency', () => {
  it.each(VHDX_FAULT_POINTS)('dynamic disk, writer killed at %s', (point) => crashAt('dynamic', point), 120_000);
  it.each(VHDX_FAULT_POINTS.filter((p) => p !== 'session:header-1'))(
    'differencing disk, writer killed at %s',
    (point) => crashAt('differencing', point),
    120_000,
  );
});
