/**
 * The access list is replaced durably: the new file's bytes are synced, it is renamed over the old
 * one, and the directory holding the name is synced too (a crash after the rename could otherwise
 * bring back the old list, or none, on filesystems that journal data and names apart).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const paths = new Map<number, string>();
  return {
    ...fs,
    openSync: (path: string, ...rest: unknown[]) => {
      const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest);
      paths.set(fd, String(path));
      return fd;
    },
    fsyncSync: (fd: number) => {
      const p = paths.get(fd) ?? '?';
      calls.push(`fsync ${fs.statSync(p).isDirectory() ? 'dir' : 'file'}`);
      fs.fsyncSync(fd);
    },
    renameSync: (from: string, to: string) => {
      calls.push('rename');
      fs.renameSync(from, to);
    },
  };
});

const { writeAccessFile } = await import('../../root-partition/management/access/access-file.ts');

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeAccessFile', () => {
  it('syncs the file, renames it over the old one, then syncs the directory', () => {
    dir = mkdtempSync(join(tmpdir(), 'tsvisor-access-'));
    const path = join(dir, 'access.json');
    writeAccessFile(path, { local: [], basic: [] });
    expect(calls).toEqual(['fsync file', 'rename', 'fsync dir']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ local: [], basic: [] });
  });
});
