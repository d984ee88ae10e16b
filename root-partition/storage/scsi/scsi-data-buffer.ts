/**
 * The data buffer of one SCSI command: an ordered list of byte views (for a guest: views of guest
 * memory, one per physically contiguous GPA run, bounds-checked by whoever built them).
 *
 * Block transfers go straight between the backend and these views. Only a sector that straddles
 * two views (a guest scatter list whose pieces are not sector multiples) passes through a
 * one-sector scratch buffer, because BlockBackend transfers whole sectors.
 */
export class ScsiDataBuffer {
  readonly length: number;

  constructor(readonly segments: readonly Uint8Array[]) {
    let n = 0;
    for (const s of segments) n += s.length;
    this.length = n;
  }

  static empty(): ScsiDataBuffer {
    return new ScsiDataBuffer([]);
  }

  /** Copies `src` to the start of the buffer (small host-built data: INQUIRY, sense, capacity). */
  copyFrom(src: Uint8Array): number {
    let done = 0;
    for (const seg of this.segments) {
      if (done === src.length) break;
      const n = Math.min(seg.length, src.length - done);
      seg.set(src.subarray(done, done + n));
      done += n;
    }
    return done;
  }

  /** Copies the start of the buffer into `dst` (small initiator-supplied parameter data); returns the bytes copied. */
  copyTo(dst: Uint8Array): number {
    let done = 0;
    for (const seg of this.segments) {
      if (done === dst.length) break;
      const n = Math.min(seg.length, dst.length - done);
      dst.set(seg.subarray(0, n), done);
      done += n;
    }
    return done;
  }

  /**
   * Moves `bytes` (a multiple of sectorSize) between the buffer and the disk starting at `lba`.
   * `io(lba, view)` is the backend's read or write; direction 'read' fills the buffer.
   */
  transfer(lba: number, bytes: number, sectorSize: number, direction: 'read' | 'write', io: (lba: number, view: Uint8Array) => void): void {
    if (bytes > this.length || bytes % sectorSize !== 0)
      throw new RangeError(`transfer of ${bytes} bytes does not fit the ${this.length}-byte buffer in whole sectors`);
    let remaining = bytes;
    let seg = 0;
    let off = 0;
    let scratch: Uint8Array | undefined;
    while (remaining > 0) {
      const view = this.segments[seg]!;
      const avail = view.length - off;
      if (avail >= sectorSize) {
        const n = Math.floor(Math.min(avail, remaining) / sectorSize) * sectorSize;
        io(lba, view.subarray(off, off + n));
        lba += n / sectorSize;
        off += n;
        remaining -= n;
      } else if (avail > 0) {
        scratch ??= new Uint8Array(sectorSize);
        if (direction === 'write') {
          [seg, off] = this.gather(scratch, seg, off);
          io(lba, scratch);
        } else {
          io(lba, scratch);
          [seg, off] = this.scatter(scratch, seg, off);
        }
        lba += 1;
        remaining -= sectorSize;
        continue;
      }
      if (off >= view.length) {
        seg++;
        off = 0;
      }
    }
  }

  private gather(dst: Uint8Array, seg: number, off: number): [number, number] {
    let done = 0;
    while (done < dst.length) {
      const view = this.segments[seg]!;
      const n = Math.min(view.length - off, dst.length - done);
      dst.set(view.subarray(off, off + n), done);
      done += n;
      off += n;
      if (off >= view.length) {
        seg++;
        off = 0;
      }
    }
    return [seg, off];
  }

  private scatter(src: Uint8Array, seg: number, off: number): [number, number] {
    let done = 0;
    while (done < src.length) {
      const view = this.segments[seg]!;
      const n = Math.min(view.length - off, src.length - done);
      view.set(src.subarray(done, done + n), off);
      done += n;
      off += n;
      if (off >= view.length) {
        seg++;
        off = 0;
      }
    }
    return [seg, off];
  }
}
