/** The boot-information block the root writes before VP 0 starts (docs/guest-abi.md). */
import * as B from '../abi/platform.ts';
import type { GuestMemory } from './guest-memory.ts';
import { HvError } from './hv-error.ts';

export interface BootInfo {
  vpCount: number;
  partitionId: number;
  flags: number;
  cmdline: string;
  imageEnd: number;
}

export function writeBootInfo(mem: GuestMemory, info: BootInfo): void {
  const cmd = Buffer.from(info.cmdline, 'latin1');
  if (cmd.length > B.BOOT_CMDLINE_MAX) throw new HvError('HV_ERR_CMDLINE', `command line is ${cmd.length} bytes; the limit is ${B.BOOT_CMDLINE_MAX}`);
  const at = B.BOOT_INFO_GPA;
  mem.zero(at, B.PAGE_SIZE);
  mem.writeU32(at + B.BOOT_INFO_MAGIC, B.BOOT_MAGIC);
  mem.writeU32(at + B.BOOT_INFO_ABI_VERSION, B.GUEST_ABI_VERSION);
  mem.writeU32(at + B.BOOT_INFO_RAM_PAGES, mem.size / B.PAGE_SIZE);
  mem.writeU32(at + B.BOOT_INFO_VP_COUNT, info.vpCount);
  mem.writeU32(at + B.BOOT_INFO_PARTITION_ID, info.partitionId);
  mem.writeU32(at + B.BOOT_INFO_FLAGS, info.flags);
  mem.writeU32(at + B.BOOT_INFO_CMDLINE_LENGTH, cmd.length);
  mem.writeU32(at + B.BOOT_INFO_IMAGE_END, info.imageEnd);
  mem.write(at + B.BOOT_INFO_CMDLINE, cmd);
}
