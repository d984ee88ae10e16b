/**
 * Which blocks of a drive the guest wrote since they were last copied: one bit per
 * DIRTY_BLOCK_BYTES of the virtual disk, so a storage move (root-partition/migration) re-sends
 * only what changed under it, as QEMU's block-dirty-bitmap and Hyper-V's storage migration track
 * writes during the copy. The map lives beside the drive on the device thread, the only thread
 * that writes the drive: a block is read and its bit cleared in one turn, so a write after the
 * read sets the bit again and the block goes in a later round. Host memory: 1 bit per 64 KiB
 * (2 KiB for a 1 GiB disk), fixed by the disk's size, whatever the guest writes.
 */
export const DIRTY_BLOCK_BYTES = 64 * 1024;

export class DirtyBlockMap {
  readonly blockCount: number;
  private readonly bits: Uint32Array;
  private dirty = 0;

  /** Every block starts dirty (nothing has been copied yet). */
  constructor(
    readonly diskBytes: number,
    readonly sectorSize: number,
  ) {
    this.blockCount = Math.ceil(diskBytes / DIRTY_BLOCK_BYTES);
    this.bits = new Uint32Array(Math.ceil(this.blockCount / 32));
    for (let b = 0; b < this.blockCount; b++) this.bits[b >>> 5] |= 1 << (b & 31);
    this.dirty = this.blockCount;
  }

  /** Blocks to send. */
  get count(): number {
    return this.dirty;
  }

  /** Bytes of block `block` (the last one may be short). */
  blockBytes(block: number): number {
    return Math.min(DIRTY_BLOCK_BYTES, this.diskBytes - block * DIRTY_BLOCK_BYTES);
  }

  /** The guest wrote (or released) `sectors` sectors from `lba`. */
  markSectors(lba: number, sectors: number): void {
    if (sectors <= 0) return;
    const first = Math.floor((lba * this.sectorSize) / DIRTY_BLOCK_BYTES);
    const last = Math.min(this.blockCount - 1, Math.floor(((lba + sectors) * this.sectorSize - 1) / DIRTY_BLOCK_BYTES));
    for (let b = Math.max(0, first); b <= last; b++) this.set(b);
  }

  isDirty(block: number): boolean {
    return (this.bits[block >>> 5] & (1 << (block & 31))) !== 0;
  }

  private set(block: number): void {
    const w = block >>> 5;
    const m = 1 << (block & 31);
    if ((this.bits[w] & m) === 0) {
      this.bits[w] |= m;
      this.dirty++;
    }
  }

  /** The first dirty block at or after `from`, or -1; whole clean words are skipped at once. */
  nextDirty(from: number): number {
    for (let b = Math.max(0, from); b < this.blockCount; ) {
      const word = this.bits[b >>> 5] >>> (b & 31);
      if (word === 0) {
        b = ((b >>> 5) + 1) << 5;
        continue;
      }
      const at = b + (31 - Math.clz32(word & -word));
      return at < this.blockCount ? at : -1;
    }
    return -1;
  }

  clear(block: number): void {
    const w = block >>> 5;
    const m = 1 << (block & 31);
    if ((this.bits[w] & m) !== 0) {
      this.bits[w] &= ~m;
      this.dirty--;
    }
  }
}
