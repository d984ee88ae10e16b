/**
 * Storage roots: a definition may name host files only inside the directories the operator
 * allowed, judged by where each path really leads (symlinks, `..`), at definition, again at
 * start, and on the opened descriptor; the refusal reads the same whether or not the path exists.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { resolvedPath, StorageRootError, StorageRoots } from '../../root-partition/host/storage-roots.ts';
import { MiB, testImages, VmmsFixture } from './vmms-fixture.ts';

const fx = new VmmsFixture();
let base = '';
let root = '';
let outside = '';
let secret = '';
const SECRET = Buffer.alloc(4096, 0x5a);

beforeAll(() => {
  base = fx.dataDir();
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  secret = join(outside, 'secret.raw');
  writeFileSync(secret, SECRET);
  chmodSync(secret, 0o600);
  writeFileSync(join(root, 'disk.raw'), Buffer.alloc(4096));
  symlinkSync(secret, join(root, 'to-secret.raw'));
  symlinkSync(join(outside, 'absent.raw'), join(root, 'to-absent.raw'));
  symlinkSync(outside, join(root, 'to-outside'));
});

afterAll(async () => {
  expect(await fx.cleanup()).toEqual([]);
});

/** The refusal with the path taken out: the same sentence for every refused path. */
function refusal(roots: StorageRoots, path: string): string {
  try {
    roots.check(path, 'disk image');
  } catch (e) {
    expect(e).toBeInstanceOf(StorageRootError);
    return (e as Error).message.replace(path, '<path>');
  }
  throw new Error(`${path} was allowed`);
}

describe('storage roots', () => {
  it('resolves symlinks and paths not there yet; refuses . and .. and dangling links', () => {
    expect(resolvedPath(join(root, 'disk.raw'))).toBe(join(root, 'disk.raw'));
    expect(resolvedPath(join(root, 'to-secret.raw'))).toBe(secret);
    expect(resolvedPath(join(root, 'new', 'later.raw'))).toBe(join(root, 'new', 'later.raw'));
    expect(resolvedPath(join(root, 'to-outside', 'x', 'y.raw'))).toBe(join(outside, 'x', 'y.raw'));
    for (const p of [`${root}/../outside/secret.raw`, `${root}/./disk.raw`, `${root}//disk.raw`, 'disk.raw', join(root, 'to-absent.raw')])
      expect(resolvedPath(p)).toBeNull();
  });

  it('allows a file in a root; refuses the rest with one sentence, whether the path exists or not', () => {
    const roots = StorageRoots.of([root]);
    expect(roots.check(join(root, 'disk.raw'), 'disk image')).toBe(join(root, 'disk.raw'));
    expect(roots.check(join(root, 'not-yet.raw'), 'disk image')).toBe(join(root, 'not-yet.raw'));
    const sentences = new Set(
      [
        secret,
        join(outside, 'absent.raw'),
        '/root/no/such/file',
        `${root}/../outside/secret.raw`,
        join(root, 'to-secret.raw'),
        join(root, 'to-absent.raw'),
        join(root, 'to-outside', 'secret.raw'),
        join(root, 'to-outside', 'absent.raw'),
      ].map((p) => refusal(roots, p)),
    );
    expect([...sentences]).toEqual([`disk image <path> is not in a storage root this host allows (${root})`]);
  });

  it('judges an opened descriptor by where it leads: a symlink swapped in after the path check gains nothing', () => {
    const roots = StorageRoots.of([root]);
    const fd = openSync(join(root, 'to-secret.raw'), 'r');
    try {
      expect(() => roots.checkOpened(fd, join(root, 'to-secret.raw'), 'disk image')).toThrow(StorageRootError);
    } finally {
      closeSync(fd);
    }
    expect(() => RawDisk.open(secret, { checkOpened: (d) => roots.checkOpened(d, secret, 'disk image') })).toThrow(/not in a storage root/);
    const ok = RawDisk.open(join(root, 'disk.raw'), { checkOpened: (d) => roots.checkOpened(d, 'disk.raw', 'disk image') });
    expect(ok.sectorCount).toBe(8);
    ok.close();
    expect(() => roots.readConfined(join(root, 'to-secret.raw'), 'guest image')).toThrow(StorageRootError);
  });

  it('VMMS refuses a definition naming a file outside its roots, and a start after a disk was pointed outside', async () => {
    const { checksum } = await testImages();
    const dataDir = fx.dataDir();
    const v = await fx.vmms({ dataDir, storageRoots: [root, dirname(checksum)] });
    const scsi = (path: string) => [{ kind: 'scsi-controller', disks: [{ location: 0, path }] }];
    expect(() => v.defineVm({ name: 'steal', memoryBytes: 16 * MiB, imagePath: checksum, devices: scsi(secret) })).toThrow(
      /disk image \(SCSI controller 0 location 0\) .* is not in a storage root/,
    );
    expect(() => v.defineVm({ name: 'steal2', memoryBytes: 16 * MiB, imagePath: join(root, 'to-secret.raw') })).toThrow(
      /guest image .* is not in a storage root/,
    );
    expect(v.list()).toEqual([]);

    const disk = join(root, 'swapped.raw');
    writeFileSync(disk, Buffer.alloc(4096));
    v.defineVm({ name: 'swap', memoryBytes: 16 * MiB, imagePath: checksum, cmdline: 'rounds=1', devices: scsi(disk) });
    expect(v.modifyVm('swap', { devices: scsi(secret) })).toMatchObject({ returnValue: 32773, error: expect.stringMatching(/not in a storage root/) });
    rmSync(disk);
    symlinkSync(secret, disk);
    const r = await v.start('swap');
    expect(r).toMatchObject({ returnValue: 32768, error: expect.stringMatching(/swapped\.raw is not in a storage root/) });
    expect(v.get('swap')!.enabledState).toBe(3);
    expect(v.get('swap')!.processId).toBeNull();
    expect(readFileSync(secret).equals(SECRET)).toBe(true);
  }, 60_000);
});
