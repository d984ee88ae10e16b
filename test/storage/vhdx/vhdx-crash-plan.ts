/** The writes of the crash-consistency test, shared by the writer child and the checker. */
export const CRASH_BLOCK = 1024 * 1024;
/** 1 GiB of 1 MiB blocks: blocks 511 and 512 have their BAT entries in two different 4 KiB sectors. */
export const CRASH_DISK = 1024 * CRASH_BLOCK;
export const CRASH_WRITES = 3;
/** Blocks the writes touch, and one they do not. */
export const CRASH_BLOCKS = [0, 1, 2, 3, 510, 511, 512, 513];

/**
 * Write 0: 4 KiB inside block 0 (partial: a bitmap update in a child). Write 1: 8 KiB across
 * blocks 511 and 512, so its metadata transaction spans two BAT sectors (three with a child's
 * bitmap). Write 2: block 2 whole.
 */
export function crashWrite(i: number): { lba: number; data: Uint8Array } {
  const sectorsPerBlock = CRASH_BLOCK / 512;
  const [lba, bytes] = [
    [3, 4096],
    [512 * sectorsPerBlock - 8, 8192],
    [2 * sectorsPerBlock, CRASH_BLOCK],
  ][i];
  return { lba, data: new Uint8Array(bytes).fill(0x10 + i) };
}
