/**
 * Format detection in front of the backend: raw stays raw, VHDX is opened as VHDX (no longer
 * served to the guest as raw container bytes), every other format is refused by its signature
 * with a message that names it and the qemu-img line that converts it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskFormatError } from '../../root-partition/storage/disk-format.ts';
import { formatOf, openDisk } from '../../root-partition/storage/open-disk.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import { createVhdx } from '../../root-partition/storage/vhdx/vhdx-create.ts';
import { VhdxDisk } from '../../root-partition/storage/vhdx/vhdx-disk.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-fmt-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function file(name: string, head: Uint8Array | string, size = 1024 * 1024, tail?: string): string {
  const p = path.join(dir, name);
  const b = Buffer.alloc(size);
  (typeof head === 'string' ? Buffer.from(head, 'latin1') : Buffer.from(head)).copy(b, 0);
  if (tail) Buffer.from(tail, 'latin1').copy(b, size - 512);
  fs.writeFileSync(p, b);
  return p;
}

describe('disk format detection', () => {
  it('refuses VHD, qcow2, VMDK (sparse and descriptor) and VDI by signature, naming format and conversion', () => {
    const vdi = Buffer.alloc(512);
    vdi.write('<<< Oracle VM VirtualBox Disk Image >>>\n', 0, 'latin1');
    vdi.writeUInt32LE(0xbeda107f, 64);
    const cases: [string, string, string][] = [
      [file('fixed.vhd', '', 1024 * 1024, 'conectix'), 'vhd', 'VHD .* -f vpc -O vhdx'],
      [file('dyn.vhd', 'conectix'), 'vhd', 'VHD'],
      [file('a.qcow2', 'QFI\xfb\0\0\0\x03'), 'qcow2', 'qcow2 \\(QEMU\\) .* -f qcow2 -O vhdx'],
      [file('a.vmdk', 'KDMV'), 'vmdk', 'VMDK \\(VMware\\)'],
      [file('b.vmdk', '# Disk DescriptorFile\nversion=1\n'), 'vmdk', 'VMDK'],
      [file('a.vdi', vdi), 'vdi', 'VDI \\(VirtualBox\\) .* -f vdi'],
    ];
    for (const [p, fmt, msg] of cases) {
      expect(formatOf(p)).toBe(fmt);
      expect(() => openDisk(p)).toThrow(expect.objectContaining({ code: DiskFormatError.Unsupported, message: expect.stringMatching(new RegExp(msg)) }));
      expect(() => openDisk(p)).toThrow(/qemu-img convert .* \(or `-O raw`\)/);
    }
  });

  it("opens raw as raw and a VHDX as VHDX, with the VHDX's virtual size rather than the file's", () => {
    const raw = file('disk.raw', 'hello');
    const r = openDisk(raw);
    expect(r).toBeInstanceOf(RawDisk);
    expect(r.sectorCount).toBe(2048);
    r.close();
    const v = path.join(dir, 'disk.vhdx');
    createVhdx(v, { type: 'dynamic', sizeBytes: 32 * 1024 * 1024 });
    const d = openDisk(v);
    expect(d).toBeInstanceOf(VhdxDisk);
    expect(d.sectorCount).toBe(65536);
    // Sector 0 of the virtual disk is zeros, not the container's "vhdxfile".
    const s0 = new Uint8Array(512);
    d.read(0, s0);
    expect(s0.every((x) => x === 0)).toBe(true);
    d.close();
  });

  it('refuses a VHDX signature in a file not named .vhdx/.avhdx (a guest can write one into its raw disk), and a .vhdx name without it', () => {
    const v = path.join(dir, 'disk.vhdx');
    createVhdx(v, { type: 'dynamic', sizeBytes: 8 * 1024 * 1024 });
    const renamed = path.join(dir, 'disk.img');
    fs.renameSync(v, renamed);
    expect(() => openDisk(renamed)).toThrow(expect.objectContaining({ code: DiskFormatError.NameMismatch }));
    const avhdx = path.join(dir, 'snap.AVHDX');
    fs.renameSync(renamed, avhdx);
    openDisk(avhdx).close();
    // And the other way round: a .vhdx name without the signature is not attached as raw.
    const fake = file('fake.vhdx', 'just bytes');
    expect(() => openDisk(fake)).toThrow(/named as VHDX but has no "vhdxfile" signature/);
  });
});
