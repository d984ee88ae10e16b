/**
 * The parts of v86's runtime objects this VP kind drives, typed. v86 (npm `v86`, pinned) has no
 * public API for ports, interrupts or registers; its published build keeps these property names
 * (src/cpu.js, src/io.js in github.com/copy/v86), and x86-vp.ts checks each one at start so an
 * upgrade that renames them fails loudly instead of running without our devices.
 */
export interface V86PortEntry {
  read8(): number;
  read16(): number;
  read32(): number;
  write8(value: number): void;
  write16(value: number): void;
  write32(value: number): void;
  device: unknown;
}

export interface V86Io {
  ports: V86PortEntry[];
}

/**
 * v86's PCI bus (src/pci.js): configuration spaces by bus-0 device/function number (bdf), and its
 * configuration writes, which move a function's I/O BARs. `address` is bdf << 8 | register.
 */
export interface V86Pci {
  devices: ({ name?: string } | undefined)[];
  device_spaces: (Int32Array | undefined)[];
  pci_write8(address: number, value: number): void;
  pci_write16(address: number, value: number): void;
  pci_write32(address: number, value: number): void;
}

export interface V86Cpu {
  io: V86Io;
  devices: { pci: V86Pci };
  /**
   * General registers EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, and guest physical memory: v86
   * hands out Proxies that make a fresh typed array over the Wasm memory at every access (the
   * memory may grow); V86Views keeps plain arrays at the same offsets instead.
   */
  reg32: { readonly byteOffset: number; readonly length: number };
  mem8: { readonly byteOffset: number; readonly length: number };
  /** Current privilege level (one byte). */
  cpl: { readonly byteOffset: number; readonly length: number };
  wasm_memory: WebAssembly.Memory;
  device_raise_irq(line: number): void;
  device_lower_irq(line: number): void;
  /** Drops v86's compiled code for the 4 KiB pages in [start, end). */
  jit_dirty_cache(start: number, end: number): void;
  /** Address in `wasm_memory` of the local APIC's state (src/rust/cpu/apic.rs `struct Apic`, repr(C)). */
  get_apic_addr(): number;
  /** Delivers the highest pending PIC or APIC interrupt if the guest accepts interrupts now. */
  handle_irqs(): void;
  /** The fw_cfg files SeaBIOS reads (v86 serves each as a file of FW_CFG_FILE_DIR). */
  option_roms: { name: string; data: Uint8Array }[];
  /** v86.wasm's exports: its allocator (src/rust/zstd.rs) among them. */
  wm: { exports: { v86_malloc(size: number): number; v86_free(addr: number): void } };
}

export interface V86Emulator {
  v86: { cpu: V86Cpu };
  add_listener(event: string, fn: (value: unknown) => void): void;
  run(): Promise<void> | void;
  stop(): Promise<void> | void;
  destroy(): Promise<void> | void;
  get_instruction_counter(): number;
}

/** Register indexes in `reg32` (x86 encoding order). */
export const Reg = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;

export function checkV86Internals(e: V86Emulator): V86Cpu {
  const cpu = e.v86?.cpu;
  const missing: string[] = [];
  if (!cpu) missing.push('v86.cpu');
  else {
    if (!Array.isArray(cpu.io?.ports) || cpu.io.ports.length !== 0x10000) missing.push('cpu.io.ports[65536]');
    if (cpu.reg32?.length !== 8 || typeof cpu.reg32.byteOffset !== 'number') missing.push('cpu.reg32');
    if (!(cpu.mem8?.length > 0) || typeof cpu.mem8.byteOffset !== 'number') missing.push('cpu.mem8');
    if (cpu.cpl?.length !== 1 || typeof cpu.cpl.byteOffset !== 'number') missing.push('cpu.cpl');
    if (!(cpu.wasm_memory instanceof WebAssembly.Memory)) missing.push('cpu.wasm_memory');
    for (const f of ['device_raise_irq', 'device_lower_irq', 'jit_dirty_cache', 'get_apic_addr', 'handle_irqs'] as const) {
      if (typeof cpu[f] !== 'function') missing.push(`cpu.${f}`);
    }
    const pci = cpu.devices?.pci;
    if (
      !Array.isArray(pci?.devices) ||
      !Array.isArray(pci.device_spaces) ||
      !(['pci_write8', 'pci_write16', 'pci_write32'] as const).every((f) => typeof pci[f] === 'function')
    )
      missing.push('cpu.devices.pci');
    if (!Array.isArray(cpu.option_roms)) missing.push('cpu.option_roms');
    if (typeof cpu.wm?.exports?.v86_malloc !== 'function' || typeof cpu.wm?.exports?.v86_free !== 'function') missing.push('v86_malloc/v86_free');
  }
  if (missing.length > 0) throw new Error(`this v86 build lacks what the x86 VP drives: ${missing.join(', ')}`);
  return cpu!;
}

/** Plain typed arrays over v86's registers and guest RAM, remade if the Wasm memory grows. */
export class V86Views {
  private buffer: ArrayBuffer | undefined;
  private reg: Int32Array = new Int32Array(0);
  private ram: Uint8Array = new Uint8Array(0);
  private readonly regOffset: number;
  private readonly ramOffset: number;
  private readonly ramLength: number;
  private readonly cplOffset: number;
  private cplView: Uint8Array = new Uint8Array(0);

  constructor(private readonly cpu: V86Cpu) {
    this.regOffset = cpu.reg32.byteOffset;
    this.ramOffset = cpu.mem8.byteOffset;
    this.ramLength = cpu.mem8.length;
    this.cplOffset = cpu.cpl.byteOffset;
  }

  get cpl(): number {
    this.refresh();
    return this.cplView[0]!;
  }

  get reg32(): Int32Array {
    this.refresh();
    return this.reg;
  }

  get mem8(): Uint8Array {
    this.refresh();
    return this.ram;
  }

  private refresh(): void {
    const b = this.cpu.wasm_memory.buffer as ArrayBuffer;
    if (b === this.buffer) return;
    this.buffer = b;
    this.reg = new Int32Array(b, this.regOffset, 8);
    this.ram = new Uint8Array(b, this.ramOffset, this.ramLength);
    this.cplView = new Uint8Array(b, this.cplOffset, 1);
  }
}
