/**
 * A guest image put into a partition's memory: refused first when it cannot run there (too big
 * for the memory, built for less, a data segment over the boot-information page), then prepared
 * (rewrite), its data segments written and the boot-information block after them.
 */
import { BOOT_FLAG_ENLIGHTENED, BOOT_INFO_GPA, IMAGE_BASE, PAGE_SIZE } from '../abi/platform.ts';
import { writeBootInfo } from './boot-info.ts';
import type { GuestMemory } from './guest-memory.ts';
import { HvError } from './hv-error.ts';
import { loadGuestImage, parseGuestImage, type GuestImage } from './image-loader.ts';
import type { RewriteOptions } from './rewrite/rewrite-abi.ts';

export function loadImageIntoMemory(
  mem: GuestMemory,
  bytes: Uint8Array,
  o: { vpCount: number; partitionId: number; cmdline: string; rewrite: RewriteOptions | undefined },
): GuestImage {
  // Layout first: an image that cannot run here is refused before anything rewrites it.
  const image = parseGuestImage(bytes);
  const ramPages = mem.size / 65536;
  if (image.minPages > ramPages) {
    throw new HvError('HV_ERR_IMAGE_TOO_BIG', `the image needs ${image.minPages * 64} KiB of memory; the partition has ${mem.size / 1024} KiB`);
  }
  if (image.maxPages !== null && image.maxPages < ramPages) {
    throw new HvError(
      'HV_ERR_IMAGE_MAX',
      `the image accepts at most ${image.maxPages * 64} KiB of memory (built with a smaller --maximumMemory); the partition has ${mem.size / 1024} KiB`,
    );
  }
  for (const s of image.segments) {
    if (s.offset < BOOT_INFO_GPA + PAGE_SIZE && s.offset + s.bytes.length > BOOT_INFO_GPA) {
      throw new HvError(
        'HV_ERR_IMAGE_LAYOUT',
        `data segment at 0x${s.offset.toString(16)} overlaps the boot-information page; link images with --memoryBase ${IMAGE_BASE}`,
      );
    }
  }
  const loaded = loadGuestImage(bytes, { rewrite: o.rewrite });
  for (const s of loaded.segments) mem.write(s.offset, s.bytes);
  writeBootInfo(mem, { vpCount: o.vpCount, partitionId: o.partitionId, flags: BOOT_FLAG_ENLIGHTENED, cmdline: o.cmdline, imageEnd: loaded.dataEnd });
  return loaded;
}
