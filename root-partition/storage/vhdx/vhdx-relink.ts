/**
 * Points a differencing VHDX at its parent anew: under a new relative path, what a copy of a
 * chain needs when its files move together (Export-VM, Import-VM -Copy), or at its parent's new
 * identity (a merge stopped part way). Only the parent locator changes — through the log, like
 * every metadata change — and the DataWriteGuid stays, so the files that build on this one still
 * match it. The absolute and volume paths Windows writes ([MS-VHDX] 2.6.2.6.1) would name the
 * old place, so they are dropped with a new relative path.
 */
import * as fs from 'node:fs';
import { lockDescriptor } from '../file-lock.ts';
import { MetadataFlag, MetadataGuid, METADATA_TABLE_SIZE, encodeMetadataTable, VhdxCorruptError, VhdxError } from './vhdx-format.ts';
import { VhdxFile } from './vhdx-file.ts';
import { guidEquals, randomGuid } from './vhdx-guid.ts';
import { readLayout } from './vhdx-layout.ts';
import type { LogSector } from './vhdx-log.ts';
import { encodeParentLocator, linkageText } from './vhdx-parent-locator.ts';

const STALE_KEYS = new Set(['relative_path', 'absolute_win32_path', 'volume_path']);

/** Sets the locator's relative_path (Windows separators, as written at creation) of the differencing file `path`. */
export function setParentRelativePath(path: string, relativePath: string): void {
  rewriteLocator(path, true, (locator) => {
    const pairs: [string, string][] = [...locator].filter(([k]) => !STALE_KEYS.has(k));
    pairs.push(['relative_path', relativePath.split('/').join('\\')]);
    return pairs;
  });
}

/**
 * Links the differencing file `path` to its parent's new DataWriteGuid (parent_linkage; a
 * parent_linkage2 goes): what a merge that stopped part way needs, since the parent it wrote into
 * changed identity while holding only sectors this child overrides. `lock: false` when the caller
 * already holds the file's lock.
 */
export function setParentLinkage(path: string, dataWriteGuid: Uint8Array, o: { lock?: boolean } = {}): void {
  rewriteLocator(path, o.lock ?? true, (locator) => [
    ...[...locator].filter(([k]) => k !== 'parent_linkage' && k !== 'parent_linkage2'),
    ['parent_linkage', linkageText(dataWriteGuid)],
  ]);
}

/** The locator of the file at `path` rewritten through its log (`lock`: take the file's exclusive lock first). */
export function rewriteLocator(path: string, lock: boolean, edit: (locator: Map<string, string>) => [string, string][]): void {
  const fd = fs.openSync(path, 'r+');
  const file = new VhdxFile(path, fd, false);
  try {
    if (lock) lockDescriptor(fd, path, 'exclusive', 'disk image');
    file.loadHeaders();
    rewriteLocatorIn(file, edit);
  } finally {
    file.close();
  }
}

/** The locator of the open file rewritten through its log (the file's in-memory layout, if any, is stale after). */
export function rewriteLocatorIn(file: VhdxFile, edit: (locator: Map<string, string>) => [string, string][]): void {
  const path = file.path;
  const layout = readLayout(file);
  const locator = layout.meta.locator;
  if (!locator) throw new VhdxCorruptError(path, 'it is not a differencing disk: it has no parent to point at', VhdxError.Parent);
  const pairs = edit(locator);
  const item = encodeParentLocator(pairs);
  const region = layout.metadataRegion;
  const entries = layout.meta.entries.map((e) => ({ ...e }));
  const entry = entries.find((e) => guidEquals(e.itemId, MetadataGuid.ParentLocator) && (e.flags & MetadataFlag.IsUser) === 0)!;
  // In place when it fits, else after the last item: the table entry then moves in the same transaction.
  if (item.length > entry.length) {
    const end = Math.max(METADATA_TABLE_SIZE, ...entries.map((e) => e.offset + e.length));
    if (end + item.length > region.length)
      throw new VhdxCorruptError(path, `the metadata region has no room for a ${item.length}-byte parent locator`, VhdxError.Unsupported);
    entry.offset = end;
  }
  entry.length = item.length;
  const sectors = new Map<number, Uint8Array>();
  const patch = (at: number, bytes: Uint8Array) => {
    for (let s = at - (at % 4096); s < at + bytes.length; s += 4096) if (!sectors.has(s)) sectors.set(s, file.readMeta(s, 4096));
    for (let i = 0; i < bytes.length; i++) sectors.get(at + i - ((at + i) % 4096))![(at + i) % 4096] = bytes[i]!;
  };
  patch(region.fileOffset, encodeMetadataTable(entries).subarray(0, 32 + 32 * entries.length));
  patch(region.fileOffset + entry.offset, item);
  // A new FileWriteGuid marks the file as changed; the DataWriteGuid (the content's identity) stays.
  file.updateHeader({ fileWriteGuid: randomGuid() });
  file.transaction([...sectors].map(([fileOffset, data]): LogSector => ({ fileOffset, data })));
}
