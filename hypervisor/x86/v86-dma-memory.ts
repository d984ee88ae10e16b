/**
 * Guest RAM of an x86 VP as emulated devices see it for DMA: a bounds-checked window of v86's
 * Wasm memory (GuestMemory), in which every region handed out for a transfer first drops v86's
 * compiled code for its pages. v86's JIT caches code per 4 KiB page and learns of writes only
 * through its own store path; a device writing into a page that held code (the page cache reuses
 * pages freely) would otherwise leave stale code to run. Regions read by a device are dropped as
 * well (the region does not say which way it is used): that costs only a recompile, never a wrong
 * result. Once v86's memory has grown (every view of it detached) no region is handed out.
 */
import { GuestMemory } from '../guest-memory.ts';
import { HvError } from '../hv-error.ts';
import type { X86Vp } from './x86-vp.ts';

export class V86DmaMemory extends GuestMemory {
  constructor(private readonly vp: X86Vp) {
    const w = vp.ramWindow;
    super(w.bytes, w.memory, w.offset);
  }

  override view(gpa: number, length: number): Uint8Array {
    if (this.vp.memoryGrew) throw new HvError('X86_MEMORY_GREW', "v86's Wasm memory grew: the host's views of guest RAM are detached");
    const v = super.view(gpa, length);
    if (length > 0) this.vp.cpu.jit_dirty_cache(gpa, gpa + length);
    return v;
  }
}
