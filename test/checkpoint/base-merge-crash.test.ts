/**
 * Crash consistency of a merge into the operator's base disk (storage/vhdx/vhdx-repoint.ts
 * through checkpoint-files.ts): base ← d1 ← {d2 ← leaf, e2}, checkpoint "one" (the base's) gone,
 * so d1 is merged into the base and d2 and e2 are pointed at it. A child process runs the
 * collection and is killed (SIGKILL) at every step of it: the copy, each locator rewrite and each
 * step of its log transaction, the base's identity in each header slot, each parent_linkage2
 * dropped. After each crash the VM's leaf and the other branch read exactly as before; the next
 * collection finishes or retries the merge; then every file reads as before (the base as d1
 * did), d1 is gone, the tree names the base, and qemu-img and libvhdi agree.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDisk } from '../../root-partition/storage/disk-tools.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import { readLocator } from '../../root-partition/storage/vhdx/vhdx-repoint.ts';
import { collectFiles } from '../../root-partition/vmms/checkpoint-files.ts';
import { emptyTree, type CheckpointTree } from '../../root-partition/vmms/checkpoint-tree.ts';
import type { DeviceDefinition } from '../../root-partition/vmms/vm-definition.ts';
import { prng } from '../helpers/prng.ts';

const MiB = 1024 * 1024;
const SIZE = 4 * MiB;
const VM = '00000000-0000-4000-8000-0000000000b1';
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const qemu = has('qemu-img');
const vhdi = has('vhdiinfo');

let root: string;
let child: string;
beforeAll(() => {
  root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsv-base-merge-'));
  // One bundle for the children: plain node starts in a fraction of tsx's time.
  child = join(root, 'child.mjs');
  buildSync({
    entryPoints: [join(import.meta.dirname, 'base-merge-crash-child.ts')],
    outfile: child,
    bundle: true,
    format: 'esm',
    platform: 'node',
    logLevel: 'silent',
  });
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

interface Scene {
  dir: string;
  files: { base: string; d1: string; d2: string; e2: string; leaf: string };
  /** What each file reads through its chain before the merge. */
  before: Record<string, Buffer>;
  tree: CheckpointTree;
  devices: DeviceDefinition[];
  treeFile: string;
}

function readAll(path: string): Buffer {
  const d = openDisk(path, { readOnly: true, lock: false });
  try {
    const b = Buffer.alloc(SIZE);
    d.read(0, b);
    return b;
  } finally {
    d.close();
  }
}

const checkpoint = (name: string, n: number, path: string) => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  name,
  parentId: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  savedState: null,
  settings: { id: VM, name: 'vm', devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path }] }] },
});

/** base ← d1 ← {d2 ← leaf, e2}, each with data of its own (whole blocks, runs within a block, over the parent's). */
function scene(tag: string): Scene {
  const dir = join(root, tag);
  spawnSync('mkdir', ['-p', dir]);
  const files = {
    base: join(dir, 'disk.vhdx'),
    d1: join(dir, 'disk_1.avhdx'),
    d2: join(dir, 'disk_2.avhdx'),
    e2: join(dir, 'disk_3.avhdx'),
    leaf: join(dir, 'disk_4.avhdx'),
  };
  let seed = 7;
  const write = (path: string, at: number, length: number) => {
    const bytes = Buffer.alloc(length);
    const r = prng(seed++);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(r() * 256);
    const d = openDisk(path, { lock: false });
    d.write(at / 512, bytes);
    d.close();
  };
  newDisk(files.base, { kind: 'dynamic', sizeBytes: SIZE, blockSizeBytes: MiB });
  write(files.base, 0, 2 * MiB);
  newDisk(files.d1, { kind: 'differencing', parentPath: files.base, blockSizeBytes: MiB });
  write(files.d1, 512, 3 * 512); // a run over the base's data
  write(files.d1, 2 * MiB, MiB); // a whole block the base has not
  write(files.d1, 3 * MiB + 4096, 8192);
  newDisk(files.d2, { kind: 'differencing', parentPath: files.d1, blockSizeBytes: MiB });
  write(files.d2, 1024, 512);
  newDisk(files.e2, { kind: 'differencing', parentPath: files.d1, blockSizeBytes: MiB });
  write(files.e2, 3 * MiB, 4096);
  newDisk(files.leaf, { kind: 'differencing', parentPath: files.d2, blockSizeBytes: MiB });
  write(files.leaf, MiB, 512);
  const before = Object.fromEntries(Object.values(files).map((f) => [f, readAll(f)]));
  const tree: CheckpointTree = {
    ...emptyTree(VM),
    checkpoints: [checkpoint('two', 2, files.d1), checkpoint('three', 3, files.d2), checkpoint('four', 4, files.e2)] as never,
    createdFiles: [files.d1, files.d2, files.e2, files.leaf],
    retainedFiles: [files.base],
  };
  const devices = [{ kind: 'scsi-controller', disks: [{ location: 0, path: files.leaf }] }] as DeviceDefinition[];
  return { dir, files, before, tree, devices, treeFile: join(dir, 'tree.json') };
}

/** The scene's files copied into a directory of their own (making them takes longer than copying). */
function copyOf(t: Scene, tag: string): Scene {
  const dir = join(root, tag);
  cpSync(t.dir, dir, { recursive: true });
  const moved = (p: string) => join(dir, p.slice(t.dir.length + 1));
  const text = JSON.stringify({ tree: t.tree, devices: t.devices }).replaceAll(t.dir, dir);
  const { tree, devices } = JSON.parse(text);
  const files = Object.fromEntries(Object.entries(t.files).map(([k, f]) => [k, moved(f)])) as Scene['files'];
  const before = Object.fromEntries(Object.entries(t.before).map(([f, b]) => [moved(f), b]));
  return { dir, files, before, tree, devices, treeFile: join(dir, 'tree.json') };
}

function runChild(s: Scene, fault: string): ReturnType<typeof spawnSync> {
  const state = join(s.dir, 'state.json');
  writeFileSync(state, JSON.stringify({ tree: s.tree, devices: s.devices, treeFile: s.treeFile }));
  return spawnSync(process.execPath, [child, state], { env: { ...process.env, TSVISOR_VHDX_FAULT_POINT: fault }, encoding: 'utf8', timeout: 60_000 });
}

/** Every file but d1 reads as before; the base reads as d1 did; d1 is gone; the tree names the base; the tools agree. */
function expectMerged(s: Scene, tree: CheckpointTree): void {
  const { base, d1, d2, e2, leaf } = s.files;
  expect(existsSync(d1)).toBe(false);
  for (const f of [d2, e2, leaf]) expect(readAll(f).equals(s.before[f]!), f).toBe(true);
  expect(readAll(base).equals(s.before[d1]!)).toBe(true);
  expect(tree.checkpoints.map((c) => (c.settings.devices[0] as unknown as { disks: { path: string }[] }).disks[0].path)).toEqual([base, d2, e2]);
  expect(tree.retainedFiles).toEqual([]);
  expect(tree.createdFiles).toEqual([d2, e2, leaf]);
  expect(tree.pendingMerges).toEqual([]);
  const b = openVhdx(base, { readOnly: true, lock: false });
  const identity = `{${b.identifier}}`;
  b.close();
  for (const g of [d2, e2]) {
    const l = readLocator(g)!;
    expect([...l.keys()].sort()).toEqual(['parent_linkage', 'relative_path']);
    expect(l.get('parent_linkage')).toBe(identity);
    expect(l.get('relative_path')).toBe('.\\disk.vhdx');
  }
  if (qemu) {
    const check = spawnSync('qemu-img', ['check', base], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  }
  if (vhdi) {
    for (const g of [d2, e2]) {
      const info = spawnSync('vhdiinfo', [g], { encoding: 'utf8' });
      expect(info.status, info.stdout + info.stderr).toBe(0);
      expect(info.stdout).toContain(`Parent identifier\t: ${identity.slice(1, -1)}`);
    }
  }
}

describe("merging into the operator's base disk", () => {
  it('uncrashed, and killed at each step: the leaf reads on, and the next collection ends with the merge done', { timeout: 900_000 }, () => {
    // The steps, from a traced run: every passage of the merge's own points, and every step of
    // the log transactions from the end of the copy on (the locator rewrites).
    const template = scene('template');
    // Uncrashed first: the base takes d1's data and keeps its name; d2 and e2 name it; d1 goes.
    const whole = copyOf(template, 'whole');
    const traced = runChild(whole, 'trace');
    expect(traced.status, traced.stderr as string).toBe(0);
    expect(JSON.parse(traced.stdout as string)).toEqual({
      done: [`merged ${whole.files.d1} into ${whole.files.base}, and pointed ${whole.files.d2}, ${whole.files.e2} at it`],
      deferred: [],
    });
    expectMerged(whole, JSON.parse(readFileSync(whole.treeFile, 'utf8')));
    const passages = [...(traced.stderr as string).matchAll(/vhdx-fault-point (\S+)/g)].map((m) => m[1]!);
    const seen = new Map<string, number>();
    const steps: string[] = [];
    let copied = false;
    for (const p of passages) {
      const nth = (seen.get(p) ?? 0) + 1;
      seen.set(p, nth);
      if (p === 'merge:copied') copied = true;
      if (p.startsWith('merge:') || p.startsWith('repoint:') || (copied && p.startsWith('log:'))) steps.push(`${p}@${nth}`);
    }
    const own = steps.filter((f) => !f.startsWith('log:'));
    expect(own).toEqual([
      'merge:copied-partly@1',
      'merge:copied@1',
      'repoint:relinked@1',
      'repoint:relinked@2',
      'repoint:identity-1@1',
      'repoint:identity@1',
      'repoint:linkage2-dropped@1',
      'repoint:linkage2-dropped@2',
    ]);
    // Each of the four locator rewrites is one log transaction of 7 steps.
    expect(steps.length).toBe(own.length + 4 * 7);
    // Every step with TSVISOR_CRASH_STEPS=all (36 runs); by default three: a rewrite's log half
    // applied (the first re-pointing; the first parent_linkage2 dropped), and the base's
    // identity in one header slot.
    const within = (after: string, before: string) => steps.slice(steps.indexOf(after) + 1, steps.indexOf(before));
    const faults =
      process.env.TSVISOR_CRASH_STEPS === 'all'
        ? steps
        : [
            within('merge:copied@1', 'repoint:relinked@1').find((f) => f.startsWith('log:applied-partly'))!,
            'repoint:identity-1@1',
            within('repoint:identity@1', 'repoint:linkage2-dropped@1').find((f) => f.startsWith('log:applied-partly'))!,
          ];
    // The first re-pointing holds from the step its log entry is live (replayed on open).
    const firstLive = within('merge:copied@1', 'repoint:relinked@1').find((f) => f.startsWith('log:header-set'))!;
    for (const fault of faults) {
      const s = copyOf(template, fault.replace(/\W/g, '-'));
      const r = runChild(s, fault);
      expect(r.signal, `${fault}: ${r.stderr}`).toBe('SIGKILL');
      // The VM's chain and the other branch open and read as before, whatever the step.
      expect(readAll(s.files.leaf).equals(s.before[s.files.leaf]!), fault).toBe(true);
      expect(readAll(s.files.e2).equals(s.before[s.files.e2]!), fault).toBe(true);
      const tree = JSON.parse(readFileSync(s.treeFile, 'utf8')) as CheckpointTree;
      const again = collectFiles(tree, s.devices);
      expect(again.deferred, fault).toEqual([]);
      // Until a locator names the base the merge starts again; from then on it is finished.
      const merged = `merged ${s.files.d1} into ${s.files.base}, and pointed ${s.files.d2}, ${s.files.e2} at it`;
      const relinked = steps.indexOf(fault) >= steps.indexOf(firstLive);
      expect(again.done, fault).toEqual(relinked ? [merged, '(finished a merge a crash had interrupted)'] : [merged]);
      expectMerged(s, again.tree);
      rmSync(s.dir, { recursive: true, force: true });
    }
  });
});
