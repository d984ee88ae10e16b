import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileAssemblyScript } from '../helpers/compile-as.ts';
import { StorVspChannel } from '../../root-partition/vsp/storvsp/storvsp-channel.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { MemoryDisk } from '../helpers/memory-disk.ts';
import { diskId, fromHex, packet, toHex } from './storvsp-test-guest.ts';

/** The AssemblyScript guest wire formats (child-sdk/drivers/storvsc-protocol.ts), compiled in-process. */
interface GuestProtocol {
  vstorPacketInit(p: number, op: number, size: number): void;
  encodeQueryProtocolVersion(p: number, v: number): void;
  encodeCreateSubChannels(p: number, n: number): void;
  encodeSrb(p: number, port: number, path: number, target: number, lun: number, cdbLength: number, dataIn: number, dtl: number): void;
  cdbRw10(p: number, write: number, lba: number, blocks: number): void;
  cdbRw16(p: number, write: number, lo: number, hi: number, blocks: number): void;
  cdbInquiry(p: number, evpd: number, page: number, alloc: number): void;
  cdbReadCapacity10(p: number): void;
  cdbReadCapacity16(p: number, alloc: number): void;
  cdbUnmap(p: number, length: number): void;
  encodeUnmapList(list: number, lo: number, hi: number, blocks: number): void;
  completionOperation(p: number): number;
  completionStatus(p: number): number;
  completionSrbStatus(p: number): number;
  completionScsiStatus(p: number): number;
  completionDataTransferLength(p: number): number;
  completionSenseInfoLength(p: number): number;
  propertiesMaxChannelCount(p: number): number;
  propertiesFlags(p: number): number;
  propertiesMaxTransferBytes(p: number): number;
  VMBUS_RQST_INIT: WebAssembly.Global;
}

const vec = (name: string) =>
  JSON.parse(readFileSync(new URL(`../vectors/storvsp/${name}`, import.meta.url), 'utf8')) as {
    steps: { name: string; request: string; completion: string }[];
  };

const PAGES = 64; // 4 MiB: the module's data sits at 1 MiB (--memoryBase)
const BUF = 0x200000;
let g: GuestProtocol;
let mem: GuestMemory;

beforeAll(async () => {
  const module = await compileAssemblyScript(new URL('../../child-sdk/drivers/storvsc-protocol.ts', import.meta.url).pathname);
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared: true });
  g = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GuestProtocol;
  mem = GuestMemory.attach(memory);
});

const bytesAt = (len = 64): string => toHex(mem.read(BUF, len));

describe('guest storvsc wire formats (AssemblyScript) against the shared vectors', () => {
  it('builds the init requests byte for byte', () => {
    const steps = vec('init-sequence.json').steps;
    mem.u8.fill(0xee, BUF, BUF + 64);
    g.vstorPacketInit(BUF, 7, 64);
    expect(bytesAt()).toBe(steps[0]!.request);
    g.encodeQueryProtocolVersion(BUF, 0x0700);
    expect(bytesAt()).toBe(steps[1]!.request);
    g.encodeQueryProtocolVersion(BUF, 0x0602);
    expect(bytesAt()).toBe(steps[2]!.request);
    g.vstorPacketInit(BUF, 10, 64);
    expect(bytesAt()).toBe(steps[3]!.request);
    g.vstorPacketInit(BUF, 8, 64);
    expect(bytesAt()).toBe(steps[4]!.request);
    g.encodeCreateSubChannels(BUF, 2);
    expect(bytesAt()).toBe(steps[5]!.request);
    // Wasm i64 globals read back signed in JS.
    expect(BigInt.asUintN(64, g.VMBUS_RQST_INIT.value as bigint)).toBe(0xfffffffffffffffdn);
  });

  it('reads the channel properties completion', () => {
    mem.write(BUF, fromHex(vec('init-sequence.json').steps[3]!.completion));
    expect([
      g.completionOperation(BUF),
      g.completionStatus(BUF),
      g.propertiesMaxChannelCount(BUF),
      g.propertiesFlags(BUF),
      g.propertiesMaxTransferBytes(BUF),
    ]).toEqual([1, 0, 4, 1, 0x40000]);
  });

  it('builds the SRB requests byte for byte and decodes their completions', () => {
    const steps = vec('srb.json').steps;
    const build: (() => void)[] = [
      () => {
        g.encodeSrb(BUF, 2, 0, 0, 0, 10, 0, 4096);
        g.cdbRw10(BUF, 1, 0x10, 8);
      },
      () => {
        g.encodeSrb(BUF, 2, 0, 0, 0, 10, 1, 4096);
        g.cdbRw10(BUF, 0, 0x10, 8);
      },
      () => {
        g.encodeSrb(BUF, 2, 0, 0, 0, 10, 1, 4096);
        g.cdbRw10(BUF, 0, 0x800, 8);
      },
      () => {
        g.encodeSrb(BUF, 2, 0, 0, 0, 6, 1, 36);
        g.cdbInquiry(BUF, 0, 0, 36);
      },
      () => {
        g.encodeSrb(BUF, 2, 0, 0, 0, 10, 1, 8);
        g.cdbReadCapacity10(BUF);
      },
    ];
    build.forEach((b, i) => {
      mem.u8.fill(0xee, BUF, BUF + 64);
      b();
      expect(bytesAt(), steps[i]!.name).toBe(steps[i]!.request);
    });
    mem.write(BUF, fromHex(steps[2]!.completion));
    expect([g.completionSrbStatus(BUF), g.completionScsiStatus(BUF), g.completionSenseInfoLength(BUF), g.completionDataTransferLength(BUF)]).toEqual([
      0x86, 2, 0x12, 0,
    ]);
  });

  it('READ(16) and READ CAPACITY(16) built by the guest run against the host storvsp', () => {
    const disk = new MemoryDisk(4096);
    disk.bytes.fill(0x3c, 4000 * 512, 4001 * 512);
    const host = new StorVspChannel({ memory: mem, luns: [{ pathId: 0, targetId: 0, lun: 0, disk: new ScsiDisk(disk, { diskId: diskId(1) }) }] });
    const send = (): number => new DataView(host.handle(packet(mem.read(BUF, 64)))!.payload.buffer).getUint32(8, true);
    g.vstorPacketInit(BUF, 7, 64);
    expect(send()).toBe(0);
    g.encodeQueryProtocolVersion(BUF, 0x0602);
    expect(send()).toBe(0);
    g.vstorPacketInit(BUF, 10, 64);
    expect(send()).toBe(0);
    g.vstorPacketInit(BUF, 8, 64);
    expect(send()).toBe(0);
    expect(host.isReady).toBe(true);
    g.encodeSrb(BUF, 0, 0, 0, 0, 16, 1, 512);
    g.cdbRw16(BUF, 0, 4000, 0, 1);
    expect(toHex(mem.read(BUF + 28, 16))).toBe('88000000000000000fa0000000010000');
    const out = host.handle(packet(mem.read(BUF, 64), 9n, [{ byteCount: 512, byteOffset: 0, pfns: [0x300] }]))!.payload;
    mem.write(BUF, out);
    expect([g.completionSrbStatus(BUF), g.completionDataTransferLength(BUF)]).toEqual([1, 512]);
    expect(mem.u8[0x300000 + 511]).toBe(0x3c);
    g.encodeSrb(BUF, 0, 0, 0, 0, 16, 1, 32);
    g.cdbReadCapacity16(BUF, 32);
    mem.write(BUF, host.handle(packet(mem.read(BUF, 64), 10n, [{ byteCount: 32, byteOffset: 0, pfns: [0x300] }]))!.payload);
    expect(g.completionDataTransferLength(BUF)).toBe(32);
    expect(toHex(mem.read(0x300000, 12))).toBe('0000000000000fff00000200');
  });

  it('UNMAP(10) and its one-descriptor parameter list, byte for byte (SBC-3 5.28)', () => {
    mem.u8.fill(0xee, BUF, BUF + 64);
    g.encodeSrb(BUF, 0, 0, 0, 0, 10, 0, 24);
    g.cdbUnmap(BUF, 24);
    expect(toHex(mem.read(BUF + 28, 16))).toBe('42000000000000001800000000000000');
    mem.u8.fill(0xee, 0x300000, 0x300000 + 32);
    g.encodeUnmapList(0x300000, 0x89abcdef, 0x1, 0x1000);
    // UNMAP DATA LENGTH 22, BLOCK DESCRIPTOR DATA LENGTH 16, reserved; LBA 0x189abcdef, 4096 blocks, reserved.
    expect(toHex(mem.read(0x300000, 32))).toBe(['0016001000000000', '0000000189abcdef', '0000100000000000', 'eeeeeeeeeeeeeeee'].join(''));
  });
});
