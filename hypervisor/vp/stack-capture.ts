/**
 * Asyncify's mechanics on one VP's instance (vp-capture.ts): unwinding its stack into the borrowed
 * capture area and reading it out, or writing a captured stack and globals back and rewinding.
 * The capture area's own bytes are copied aside while the VP borrows it and put back by
 * `finishUnwind`/`finishRewind`, or by `putBack` when the VP leaves in between (a fault).
 */
import type { GuestMemory } from '../guest-memory.ts';
import { GLOBAL_EXPORT_PREFIX } from '../rewrite/rewrite-abi.ts';
import { GuestFault } from './guest-fault.ts';
import { asyncifyOf, CAPTURE_AREA_GPA, captureAreaSize, readGlobal, writeGlobal, type AsyncifyExports, type CapturedGlobal } from './vp-capture.ts';

interface LiveGlobal {
  name: string;
  global: WebAssembly.Global;
  type: CapturedGlobal['type'];
}

export class StackCapture {
  private readonly asyncify: AsyncifyExports | null;
  private readonly globals: LiveGlobal[] = [];
  private borrowed: Uint8Array | null = null;

  constructor(
    private readonly mem: GuestMemory,
    instance: WebAssembly.Instance,
  ) {
    this.asyncify = asyncifyOf(instance.exports);
    for (const [name, g] of Object.entries(instance.exports)) {
      if (!name.startsWith(GLOBAL_EXPORT_PREFIX) || !(g instanceof WebAssembly.Global)) continue;
      const type = name.slice(name.lastIndexOf('_') + 1);
      if (type === 'i32' || type === 'i64' || type === 'f32' || type === 'f64') this.globals.push({ name, global: g, type });
    }
  }

  /** Called inside the exit the VP parks in: its frames unwind into the capture area as it returns. */
  startUnwind(): void {
    const at = CAPTURE_AREA_GPA,
      size = captureAreaSize(this.mem.size);
    this.borrow(size);
    this.mem.dv.setUint32(at, at + 8, true);
    this.mem.dv.setUint32(at + 4, at + size, true);
    this.asyncify!.asyncify_start_unwind(at);
  }

  /** After the entry returned unwound: the frames and the globals; the area is the guest's again. */
  finishUnwind(): { stack: Uint8Array; globals: CapturedGlobal[] } {
    this.asyncify!.asyncify_stop_unwind();
    const at = CAPTURE_AREA_GPA;
    const end = this.mem.dv.getUint32(at, true);
    if (end < at + 8 || end > at + captureAreaSize(this.mem.size)) throw new Error(`the unwound stack ends at 0x${end.toString(16)}, outside the capture area`);
    const stack = this.mem.u8.slice(at + 8, end);
    this.putBack();
    return { stack, globals: this.globals.map((g) => readGlobal(g.name, g.global, g.type)) };
  }

  /** Before the entry is called again: the globals set, the frames in the area, Asyncify rewinding. */
  startRewind(stack: Uint8Array, globals: readonly CapturedGlobal[]): void {
    if (!this.asyncify) throw new GuestFault('trap', 'a captured VP needs a capturable image');
    const byName = new Map(this.globals.map((g) => [g.name, g]));
    if (globals.length !== byName.size) throw new GuestFault('trap', `the capture holds ${globals.length} globals; the image has ${byName.size}`);
    for (const g of globals) {
      const live = byName.get(g.name);
      if (!live || live.type !== g.type || g.bits.length !== 8)
        throw new GuestFault('trap', `the capture's global ${g.name} (${g.type}) is not one of the image's`);
      writeGlobal(live.global, g);
    }
    const at = CAPTURE_AREA_GPA,
      n = stack.length;
    if (8 + n > captureAreaSize(this.mem.size)) throw new GuestFault('trap', `the captured stack (${n} bytes) does not fit the capture area`);
    this.borrow(8 + n);
    this.mem.u8.set(stack, at + 8);
    this.mem.dv.setUint32(at, at + 8 + n, true);
    this.mem.dv.setUint32(at + 4, at + 8 + n, true);
    this.asyncify.asyncify_start_rewind(at);
  }

  /** Inside the exit the VP was captured in: the rewind is complete. */
  finishRewind(): void {
    this.asyncify!.asyncify_stop_rewind();
    this.putBack();
  }

  /** The capture area holds the guest's bytes again (idempotent). */
  putBack(): void {
    if (this.borrowed) this.mem.u8.set(this.borrowed, CAPTURE_AREA_GPA);
    this.borrowed = null;
  }

  private borrow(bytes: number): void {
    this.borrowed = this.mem.u8.slice(CAPTURE_AREA_GPA, CAPTURE_AREA_GPA + bytes);
  }
}
