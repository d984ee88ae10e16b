/**
 * The host CPU of one storvsp request on one thread, no VM: a 4 KiB READ(10) through
 * StorVspChannel.handle (GPA check, SCSI target, pread into guest memory, completion encoded),
 * beside the pread alone. What is left between the two is storvsp's own per-request work, the
 * part of the device thread's time a faster host path can cut. Compare figures within one run.
 * Usage: npx tsx bench/storvsp-path.ts [--requests N]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestMemory } from '../hypervisor/guest-memory.ts';
import { gpaRangesBuffer } from '../vmbus/host/gpa-direct.ts';
import { RawDisk } from '../root-partition/storage/raw-disk.ts';
import { ScsiDisk } from '../root-partition/storage/scsi/scsi-disk.ts';
import { StorVspChannel, type StorVspIncoming } from '../root-partition/vsp/storvsp/storvsp-channel.ts';
import { VmstorProtocolVersion, VstorOperation } from '../root-partition/vsp/storvsp/storvsp-protocol.ts';

const PAGES = 256;

function vstor(operation: number, fill?: (p: Uint8Array, dv: DataView) => void): StorVspIncoming {
  const p = new Uint8Array(64);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, operation, true);
  fill?.(p, dv);
  return { transactionId: 1n, completionRequested: true, payload: p };
}

function read10(lba: number): Uint8Array {
  return vstor(VstorOperation.ExecuteSrb, (p, dv) => {
    dv.setUint16(12, 0x34, true);
    p[20] = 10;
    p[21] = 0x14;
    p[22] = 1;
    dv.setUint32(24, 4096, true);
    p.set([0x28, 0, lba >>> 24, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, 0, 8, 0], 28);
  }).payload;
}

export function runStorvspPathBench(requests: number): { handleUs: number; backendInHandleUs: number; preadAloneUs: number; storvspOwnUs: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-storvsp-path-'));
  try {
    const file = path.join(dir, 'disk.raw');
    fs.writeFileSync(file, Buffer.alloc(PAGES * 4096, 7));
    const raw = RawDisk.open(file);
    const mem = new GuestMemory(4 << 20);
    mem.u8.fill(1); // backed: no first-touch faults in the figures
    const ch = new StorVspChannel({ memory: mem, luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(raw, { diskId: new Uint8Array(16) }) }] });
    ch.handle(vstor(VstorOperation.BeginInitialization));
    ch.handle(vstor(VstorOperation.QueryProtocolVersion, (_, dv) => dv.setUint16(12, VmstorProtocolVersion.Win10, true)));
    ch.handle(vstor(VstorOperation.QueryProperties));
    ch.handle(vstor(VstorOperation.EndInitialization));
    // The framework checks each request's pages once (VspChannel.gpaDirect): that is part of the cost.
    const reqs = Array.from({ length: PAGES }, (_, i) => ({ payload: read10(i * 8), ranges: [{ byteCount: 4096, byteOffset: 0, pfns: [16 + i] }] }));
    const incoming: StorVspIncoming = { transactionId: 1n, completionRequested: true, payload: reqs[0]!.payload };
    const one = (i: number) => {
      const r = reqs[i % PAGES]!;
      incoming.payload = r.payload;
      incoming.data = gpaRangesBuffer(mem, r.ranges);
      const out = ch.handle(incoming);
      if (out === null || out.payload[14] !== 1) throw new Error('READ(10) failed');
    };
    for (let i = 0; i < Math.min(requests, 20_000); i++) one(i); // JIT warm-up
    const io0 = raw.ioUs;
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) one(i);
    const handleUs = ((performance.now() - t0) * 1000) / requests;
    const backendInHandleUs = (raw.ioUs - io0) / requests;
    const fd = fs.openSync(file, 'r');
    const view = mem.u8.subarray(16 * 4096, (16 + PAGES) * 4096);
    const t1 = performance.now();
    for (let i = 0; i < requests; i++) fs.readSync(fd, view, (i % PAGES) * 4096, 4096, (i % PAGES) * 4096);
    const preadAloneUs = ((performance.now() - t1) * 1000) / requests;
    fs.closeSync(fd);
    raw.close();
    return { handleUs, backendInHandleUs, preadAloneUs, storvspOwnUs: handleUs - backendInHandleUs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--requests');
  const n = i > 0 ? Number(process.argv[i + 1]) : 200_000;
  for (let round = 0; round < 3; round++) {
    const r = runStorvspPathBench(n);
    console.log(
      `round ${round + 1}: handle ${r.handleUs.toFixed(2)} µs/request, of which pread ${r.backendInHandleUs.toFixed(2)} µs; storvsp's own ${r.storvspOwnUs.toFixed(2)} µs; pread alone ${r.preadAloneUs.toFixed(2)} µs`,
    );
  }
}
