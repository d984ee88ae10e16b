/**
 * SynIC vectors into v86's local APIC. v86 exports no call that raises a vector in its APIC from
 * outside; its state is a repr(C) struct in the Wasm memory (src/rust/cpu/apic.rs, whose layout
 * v86 asserts at compile time because its saved state depends on it): IRR at 16 × 4 bytes,
 * spurious vector at 40 × 4 (0xFE at reset, checked here). Setting an IRR bit is what the APIC's
 * own delivery does for a fixed, edge-triggered interrupt; v86 takes it at its next look for
 * interrupts (after an instruction batch, STI, IRET) or at once through `handle_irqs`.
 */
import type { V86Cpu } from './v86-internals.ts';
import type { X86InterruptSink } from './x86-partition.ts';

const APIC_IRR = 16 * 4;
const APIC_SPURIOUS_VECTOR = 40 * 4;
const APIC_SPURIOUS_AT_RESET = 0xfe;

export class V86LocalApic implements X86InterruptSink {
  private readonly addr: number;

  /** Call before the processor starts (the check reads the reset value). */
  constructor(private readonly cpu: V86Cpu) {
    this.addr = cpu.get_apic_addr() >>> 0;
    const spurious = new DataView(cpu.wasm_memory.buffer).getUint32(this.addr + APIC_SPURIOUS_VECTOR, true);
    if (this.addr === 0 || this.addr % 4 !== 0 || spurious !== APIC_SPURIOUS_AT_RESET) {
      throw new Error(
        `this v86 build's local APIC state is not laid out as expected (at 0x${this.addr.toString(16)}, spurious vector 0x${spurious.toString(16)})`,
      );
    }
  }

  raise(vector: number): void {
    const irr = new Int32Array(this.cpu.wasm_memory.buffer, this.addr + APIC_IRR, 8);
    irr[vector >>> 5] |= 1 << (vector & 31);
  }

  deliverNow(): void {
    this.cpu.handle_irqs();
  }
}
