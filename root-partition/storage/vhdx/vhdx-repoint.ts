/**
 * Merging a differencing file F into its parent B when B keeps its own name — Hyper-V's removal
 * of the first checkpoint of a disk: the first AVHDX is merged into the operator's disk, and the
 * files that built on the AVHDX (the grandchildren) are re-pointed at the disk. The steps, in an
 * order that leaves a chain opening with the same data after a crash at any point ([MS-VHDX]
 * 2.6.2.6.3 and note <12>: the new identity goes into the child's linkage before the parent's
 * header):
 *
 *   1. F's own sectors are copied into B, which keeps its DataWriteGuid (it gains only sectors F
 *      overrides, so F still opens against it and reads as before), and B is flushed
 *      (`copyIntoParent`, vhdx-edit.ts);
 *   2. each grandchild's locator names B: every path key it had rewritten to B's place,
 *      parent_linkage B's new DataWriteGuid, parent_linkage2 B's current one — so it opens
 *      against B before and after B's identity changes, with B holding F's data;
 *   3. B takes the new DataWriteGuid (both header slots);
 *   4. each grandchild's parent_linkage2 goes;
 *   5. F is deleted.
 *
 * A crash before 2 leaves F as it was; from 2 on, a grandchild's locator names B and the new
 * identity, and `repointPastChild` run again with that identity finishes (every step is done
 * only where it is not already).
 */
import * as fs from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { lockDescriptor } from '../file-lock.ts';
import { relativeWindowsPath } from './vhdx-create.ts';
import { vhdxFaultPoint } from './vhdx-fault-point.ts';
import { VhdxFile } from './vhdx-file.ts';
import { guidEquals, guidFromText, guidIsZero, type Guid } from './vhdx-guid.ts';
import { readLayout } from './vhdx-layout.ts';
import { parentPathOf } from './vhdx-open.ts';
import { linkageText } from './vhdx-parent-locator.ts';
import { rewriteLocator } from './vhdx-relink.ts';

/** Rewrites one file's locator (the default opens it by path with an exclusive lock; a running chain passes its own open file). */
export type LocatorWriter = (path: string, edit: (locator: Map<string, string>) => [string, string][]) => void;

export const lockedLocatorWriter: LocatorWriter = (path, edit) => rewriteLocator(path, true, edit);

/** The parent locator of a VHDX, read without a lock (a crash's live log laid over it), or null for a base disk. */
export function readLocator(path: string): Map<string, string> | null {
  const fd = fs.openSync(path, 'r');
  const file = new VhdxFile(path, fd, true);
  try {
    file.loadHeaders();
    return readLayout(file).meta.locator ?? null;
  } finally {
    file.close();
  }
}

/** True when the file's header names a log entry not yet replayed (a crash stopped an update). */
function hasLiveLog(path: string): boolean {
  const fd = fs.openSync(path, 'r');
  const file = new VhdxFile(path, fd, true);
  try {
    file.loadHeaders();
    return !guidIsZero(file.header.logGuid);
  } finally {
    file.close();
  }
}

/** The DataWriteGuid a locator's parent_linkage names. */
export function linkageOf(locator: Map<string, string>): Guid {
  return guidFromText(locator.get('parent_linkage')!.replace(/[{}]/g, ''));
}

/** True when the locator of `path` names `parentPath` as its parent. */
export function namesParent(path: string, parentPath: string): boolean {
  const locator = readLocator(path);
  if (!locator?.has('relative_path')) return false;
  return parentPathOf(path, locator) === resolve(parentPath);
}

/**
 * A Windows path key (absolute_win32_path, volume_path) that named `from` rewritten to name `to`:
 * its directory part moved as the host path moves (`to` relative to `from`'s directory).
 */
function movedWindowsPath(value: string, from: string, to: string): string {
  const parts = value.split('\\');
  parts.pop();
  for (const seg of relative(dirname(resolve(from)), resolve(to)).split('/')) {
    if (seg === '..') {
      if (parts.length > 1) parts.pop();
    } else if (seg !== '.' && seg !== '') parts.push(seg);
  }
  return parts.join('\\');
}

/**
 * The locator pairs of `child` (whose parent was `from`) naming `to` instead: the path keys the
 * file had, each rewritten; the linkage keys as given; any other key kept.
 */
export function repointedLocator(
  locator: Map<string, string>,
  child: string,
  from: string,
  to: string,
  linkage: Guid,
  linkage2: Guid | null,
): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [k, value] of locator) {
    if (k === 'parent_linkage' || k === 'parent_linkage2') continue;
    if (k === 'relative_path') pairs.push([k, relativeWindowsPath(child, to)]);
    else if (k === 'absolute_win32_path' || k === 'volume_path') pairs.push([k, movedWindowsPath(value, from, to)]);
    else pairs.push([k, value]);
  }
  if (!locator.has('relative_path')) pairs.push(['relative_path', relativeWindowsPath(child, to)]);
  pairs.unshift(['parent_linkage', linkageText(linkage)]);
  if (linkage2) pairs.push(['parent_linkage2', linkageText(linkage2)]);
  return pairs;
}

export interface RepointOptions {
  /** Writes the grandchildren's locators (default: each opened by path, locked exclusively). */
  writeLocator?: LocatorWriter;
  /** The base, already open read-write (a running chain's); default: opened here, locked exclusively. */
  base?: VhdxFile;
}

/**
 * Steps 2–5 of the file comment, each skipped where done: `base` already holds `child`'s own
 * sectors (flushed); `grandchildren` are the files that build on `child` (or on `base` already,
 * named here by a run a crash stopped); `identity` is the base's new DataWriteGuid.
 */
export function repointPastChild(base: string, child: string, grandchildren: readonly string[], identity: Guid, o: RepointOptions = {}): void {
  const write = o.writeLocator ?? lockedLocatorWriter;
  const present = grandchildren.filter((g) => fs.existsSync(g));
  if (!o.base && settled(base, present, identity)) {
    fs.rmSync(child, { force: true });
    return;
  }
  let fd: number | null = null;
  let file = o.base;
  if (!file) {
    fd = fs.openSync(base, 'r+');
    file = new VhdxFile(base, fd, false);
  }
  try {
    if (fd !== null) {
      lockDescriptor(fd, base, 'exclusive', 'disk image');
      file.loadHeaders();
    }
    const current = Uint8Array.from(file.header.dataWriteGuid);
    const retire = guidEquals(current, identity) ? null : current;
    for (const g of present) {
      const locator = readLocator(g);
      if (!locator) throw new Error(`${g} is not a differencing disk: it cannot be pointed at ${base}`);
      const onBase = locator.has('relative_path') && parentPathOf(g, locator) === resolve(base);
      if (onBase && guidEquals(linkageOf(locator), identity)) continue;
      write(g, (l) => repointedLocator(l, g, onBase ? base : child, base, identity, retire));
      vhdxFaultPoint('repoint:relinked');
    }
    if (retire) {
      file.updateHeader({ dataWriteGuid: identity });
      vhdxFaultPoint('repoint:identity-1');
      file.updateHeader({ dataWriteGuid: identity });
      vhdxFaultPoint('repoint:identity');
    }
    for (const g of present) {
      if (!readLocator(g)!.has('parent_linkage2')) continue;
      write(g, (l) => [...l].filter(([k]) => k !== 'parent_linkage2'));
      vhdxFaultPoint('repoint:linkage2-dropped');
    }
    // A crash in a rewrite's log transaction leaves a live log, which this project replays on
    // open but other readers (libvhdi) may not: replayed here, by a read-write open.
    for (const g of present) if (hasLiveLog(g)) write(g, (l) => [...l]);
  } finally {
    if (fd !== null) file.close();
  }
  fs.rmSync(child, { force: true });
}

/** True when nothing but the child's deletion is left: the base has the identity, and each grandchild names it alone. */
function settled(base: string, grandchildren: readonly string[], identity: Guid): boolean {
  const fd = fs.openSync(base, 'r');
  const file = new VhdxFile(base, fd, true);
  try {
    file.loadHeaders();
    if (!guidEquals(file.header.dataWriteGuid, identity) || !guidIsZero(file.header.logGuid)) return false;
  } finally {
    file.close();
  }
  return grandchildren.every((g) => {
    if (hasLiveLog(g)) return false;
    const l = readLocator(g);
    return l !== null && !l.has('parent_linkage2') && namesParent(g, base) && guidEquals(linkageOf(l), identity);
  });
}
