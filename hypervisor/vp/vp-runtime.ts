/**
 * One virtual processor: the guest image's instance on this thread plus the hypervisor's VP part
 * (docs/guest-abi.md). Every import is an exit: CPUID, MSRs and hypercalls are handled here, on
 * the VP's own thread, as a hypervisor handles them on the CPU that trapped; port I/O, MMIO,
 * unknown MSRs and foreign CPUID leaves go to the root partition through the intercept mailbox.
 * Interrupts are delivered at exit boundaries: on halt, on sti, and on return from any exit while
 * interrupts are enabled; in a rewritten image (../rewrite/) also at preemption points, and the
 * delivery runs in Wasm: the host only raises the image's interrupt flag, and the code the
 * rewrite placed after the exit calls the handler, so no JavaScript frame sits inside the stack.
 * The VP's parts and the exits handled here are vp-exit-handlers.ts; the end of every exit
 * (requests, timers, interrupts, halt, capture) is vp-exit-boundary.ts; this file instantiates
 * the image with its imports and runs it.
 */
import { InterceptKind } from '../intercept-mailbox.ts';
import { VP_RUN_STATE, VpCounter, VpRunState } from '../partition-control.ts';
import { GuestFault, VpStop } from './guest-fault.ts';
import { IRQ_FLAG_EXPORT, IRET_IMPORT, PREEMPT_IMPORT, REWRITE_MODULE, TAKE_INTERRUPT_IMPORT } from '../rewrite/rewrite-abi.ts';
import { PARK_POINTS, type VpCapture } from './vp-capture.ts';
import { StackCapture } from './stack-capture.ts';
import type { VpEntry, VpExitReason } from './vp-events.ts';
import { VpExitBoundary } from './vp-exit-boundary.ts';
import type { GuestExports } from './vp-exit-handlers.ts';

export type { VpRuntimeOptions } from './vp-exit-handlers.ts';

export class VpRuntime extends VpExitBoundary {
  /** The import object every guest image instantiates with (docs/guest-abi.md). */
  imports(): WebAssembly.Imports {
    const io = (size: 1 | 2 | 4) => (port: number) => {
      this.exit(VpCounter.IoExits);
      this.forward(InterceptKind.IoRead, port & 0xffff, size, 0, 0, 0, 0);
      const mask = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
      return this.leave((this.intercepts.out(0) & mask) >>> 0);
    };
    const out = (size: 1 | 2 | 4) => (port: number, value: number) => {
      this.exit(VpCounter.IoExits);
      this.forward(InterceptKind.IoWrite, port & 0xffff, size, value & (size === 4 ? -1 : (1 << (size * 8)) - 1), 0, 0, 0);
      this.leave(undefined);
    };
    const ins = (size: 1 | 2 | 4, kind: number) => (port: number, gpa: number, count: number) => {
      this.exit(VpCounter.StringIoExits);
      count >>>= 0;
      gpa >>>= 0;
      if (!this.mem.contains(gpa, count * size))
        throw new GuestFault('memory', `string I/O buffer 0x${gpa.toString(16)}+${count * size} is outside guest memory`);
      this.count(VpCounter.StringIoBytes, count * size);
      this.forward(kind as 3 | 4, port & 0xffff, size, 0, 0, gpa, count);
      return this.leave(count);
    };
    const imports: WebAssembly.Imports = {
      env: { memory: this.opts.memory },
      hv: {
        vp_index: new WebAssembly.Global({ value: 'i32', mutable: false }, this.vp),
        cpuid: (leaf: number, subleaf: number, outGpa: number) => this.cpuid(leaf >>> 0, subleaf >>> 0, outGpa >>> 0),
        rdmsr: (msr: number) => this.rdmsr(msr >>> 0),
        wrmsr: (msr: number, value: bigint) => this.wrmsr(msr >>> 0, value),
        hypercall: (lo: number, hi: number, inGpa: number, outGpa: number) => {
          this.exit(VpCounter.HypercallExits);
          this.countCall(lo);
          this.requireHypercallPage();
          return this.leave(this.dispatcher.call(lo, hi, inGpa, outGpa));
        },
        hypercall_fast: (lo: number, hi: number, a: number, b: number, c: number, d: number) => {
          this.exit(VpCounter.HypercallExits);
          this.countCall(lo);
          this.requireHypercallPage();
          return this.leave(this.dispatcher.callFast(lo, hi, a, b, c, d));
        },
        inb: io(1),
        inw: io(2),
        inl: io(4),
        outb: out(1),
        outw: out(2),
        outl: out(4),
        insb: ins(1, InterceptKind.IoReadString),
        insw: ins(2, InterceptKind.IoReadString),
        insl: ins(4, InterceptKind.IoReadString),
        outsb: ins(1, InterceptKind.IoWriteString),
        outsw: ins(2, InterceptKind.IoWriteString),
        outsl: ins(4, InterceptKind.IoWriteString),
        mmio_read: (gpa: number, size: number) => this.mmio(true, gpa >>> 0, size, 0),
        mmio_write: (gpa: number, size: number, value: number) => {
          this.mmio(false, gpa >>> 0, size, value);
        },
        halt: () => this.halt(),
        sti: () => {
          this.interruptsEnabled = true;
          this.interruptPoint();
        },
        cli: () => {
          this.interruptsEnabled = false;
        },
        panic: (m: number, mn: number, f: number, fn: number, line: number, col: number) => {
          throw new GuestFault('panic', `guest panic: ${this.utf16(m, mn)} at ${this.utf16(f, fn)}:${line}:${col}`);
        },
      },
    };
    if (this.rewritten) {
      imports[REWRITE_MODULE] = {
        [PREEMPT_IMPORT]: () => this.preempt(),
        [TAKE_INTERRUPT_IMPORT]: () => this.takeInterrupt(),
        [IRET_IMPORT]: () => {
          this.interruptsEnabled = true;
        },
      };
    }
    if (this.capturable) {
      // A rewind re-enters the exit the VP was captured in: it returns what it had computed.
      const hv = imports.hv as Record<string, unknown>;
      for (const name of PARK_POINTS) hv[name] = this.resumable(hv[name] as (...a: never[]) => unknown);
      const t = imports[REWRITE_MODULE] as Record<string, unknown>;
      t[PREEMPT_IMPORT] = this.resumable(t[PREEMPT_IMPORT] as () => number);
    }
    return imports;
  }

  private instantiated = false;

  /**
   * Instantiates the image (once): before run() when the thread is started ahead of the state it
   * continues from (a live migration's destination), so the switch-over does not wait for it.
   * The image's memory is imported and it has no start function: guest memory is not touched.
   */
  instantiate(): void {
    if (this.instantiated) return;
    const instance = new WebAssembly.Instance(this.opts.module, this.imports());
    this.exports = instance.exports as GuestExports;
    if (this.rewritten) this.irqFlag = instance.exports[IRQ_FLAG_EXPORT] as WebAssembly.Global;
    if (this.capturable) this.stack = new StackCapture(this.mem, instance);
    this.instantiated = true;
  }

  /**
   * Instantiates the image and runs the entry until the guest returns, faults, is stopped, or is
   * captured. With `rewind` the entry is called again and Asyncify rewinds the captured stack.
   */
  run(entry: VpEntry, rewind: VpCapture | undefined = this.opts.rewind): VpExitReason {
    Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Running);
    this.startedMs = performance.now();
    try {
      this.instantiate();
      const name = entry.kind === 'boot' ? 'boot' : 'vp_start';
      const fn = this.exports[name];
      if (typeof fn !== 'function') throw new GuestFault('ud', `guest image has no ${name} export`);
      this.opts.notify({ type: 'entered', vp: this.vp });
      if (rewind) this.beginRewind(rewind);
      const value = entry.kind === 'ap' ? (fn as (r: number) => number)(entry.rip) : (fn as () => number)();
      if (this.unwoundResult) return { reason: 'captured', capture: this.finishUnwind(entry) };
      if (this.rewinding) throw new GuestFault('trap', 'the captured stack did not lead back to the exit it was captured in');
      return { reason: 'returned', value: typeof value === 'number' ? value : 0 };
    } catch (e) {
      if (e instanceof VpStop) return { reason: e.reason };
      if (e instanceof GuestFault) return { reason: 'fault', kind: e.kind, message: e.message };
      if (e instanceof WebAssembly.RuntimeError) return { reason: 'fault', kind: 'trap', message: `guest trap: ${e.message}` };
      return { reason: 'fault', kind: 'host', message: e instanceof Error ? e.message : String(e) };
    } finally {
      // Whatever happened, the capture area holds the guest's bytes again.
      this.stack?.putBack();
      this.count(VpCounter.WaitSpinHits, this.waits.spinHits);
      this.count(VpCounter.WaitSleeps, this.waits.sleeps);
      this.waits.spinHits = this.waits.sleeps = 0;
      this.cpu?.close();
      Atomics.store(this.i32, (this.base + VP_RUN_STATE) >> 2, VpRunState.Stopped);
      Atomics.notify(this.i32, (this.base + VP_RUN_STATE) >> 2);
    }
  }
}
