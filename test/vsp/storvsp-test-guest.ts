import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import type { ScsiLunConfig } from '../../root-partition/vsp/storvsp/scsi-controller.ts';
import { StorVspChannel, type StorVspIncoming, type StorVspOptions } from '../../root-partition/vsp/storvsp/storvsp-channel.ts';
import type { GpaRangeLike as GpaDirectRange } from '../../vmbus/host/gpa-direct.ts';
import { MemoryDisk } from '../helpers/memory-disk.ts';

/** VMBUS_RQST_INIT (Linux include/linux/hyperv.h): the trans_id storvsc uses for init requests. */
export const VMBUS_RQST_INIT = 0xfffffffffffffffdn;

export const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function diskId(n: number): Uint8Array {
  const id = new Uint8Array(16);
  id.fill(n);
  return id;
}

/** A test rig: guest memory, in-memory disks at the given LUNs and a storvsp channel. */
export function makeRig(opts: { sectors?: number; luns?: number[]; memoryBytes?: number; extra?: Partial<StorVspOptions> } = {}) {
  const memory = new GuestMemory(opts.memoryBytes ?? 1 << 20);
  const backends: MemoryDisk[] = [];
  const luns: ScsiLunConfig[] = (opts.luns ?? [0]).map((lun, i) => {
    const b = new MemoryDisk(opts.sectors ?? 2048);
    backends.push(b);
    return { pathId: 0, targetId: 0, lun, disk: new ScsiDisk(b, { diskId: diskId(i + 1) }) };
  });
  const channel = new StorVspChannel({ memory, luns, maxSubChannels: 4, ...opts.extra });
  return { memory, backends, channel };
}

export const packet = (payload: Uint8Array, transactionId = 1n, ranges?: GpaDirectRange[]): StorVspIncoming => ({
  transactionId,
  completionRequested: true,
  payload,
  ranges,
});

/** Builds the 64-byte requests of Linux storvsc_channel_init. */
export function initPacket(operation: number, u16At12 = 0): StorVspIncoming {
  const p = new Uint8Array(64);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, operation, true);
  dv.setUint32(4, 1, true);
  dv.setUint16(12, u16At12, true);
  return packet(p, VMBUS_RQST_INIT);
}

/** Runs BEGIN, QUERY_PROTOCOL_VERSION(version), QUERY_PROPERTIES, END and checks each succeeded. */
export function negotiate(channel: StorVspChannel, version = 0x0602): void {
  const replies = channel.handleBatch([initPacket(7), initPacket(9, version), initPacket(10), initPacket(8)]);
  for (const r of replies) {
    if (new DataView(r.payload.buffer).getUint32(8, true) !== 0) throw new Error('init step failed');
  }
}

export interface SrbFields {
  lun?: number;
  targetId?: number;
  pathId?: number;
  cdb: Uint8Array | string;
  cdbLength?: number;
  dataIn?: number;
  dataTransferLength?: number;
  senseInfoLength?: number;
  length?: number;
}

/** A Win8+ EXECUTE_SRB vstor_packet the way Linux storvsc_queuecommand fills it. */
export function srbPacket(f: SrbFields): Uint8Array {
  const p = new Uint8Array(64);
  const dv = new DataView(p.buffer);
  const cdb = typeof f.cdb === 'string' ? fromHex(f.cdb) : f.cdb;
  dv.setUint32(0, 3, true);
  dv.setUint32(4, 1, true);
  dv.setUint16(12, f.length ?? 0x34, true);
  p[17] = f.pathId ?? 0;
  p[18] = f.targetId ?? 0;
  p[19] = f.lun ?? 0;
  p[20] = f.cdbLength ?? cdb.length;
  p[21] = f.senseInfoLength ?? 0x14;
  p[22] = f.dataIn ?? 2;
  dv.setUint32(24, f.dataTransferLength ?? 0, true);
  p.set(cdb.subarray(0, 16), 28);
  p[50] = 0xff;
  p[51] = 0x20;
  dv.setUint32(52, 0x10a, true);
  dv.setUint32(56, 60, true);
  return p;
}

/** One GPA-direct range covering `length` bytes at `gpa` (page-aligned PFN list). */
export function rangeAt(gpa: number, length: number): GpaDirectRange {
  const first = Math.floor(gpa / 4096);
  const offset = gpa % 4096;
  const pages = Math.ceil((offset + length) / 4096);
  return { byteCount: length, byteOffset: offset, pfns: Array.from({ length: pages }, (_, i) => BigInt(first + i)) };
}
