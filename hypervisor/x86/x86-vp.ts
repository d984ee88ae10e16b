/**
 * The x86 kind of VP: one 32-bit x86 processor emulated by v86 (npm `v86`, pinned), with a PC
 * around it — SeaBIOS, then a bzImage kernel and initrd loaded the way v86 loads them. Runs on the
 * thread that creates it (the VP thread). Host devices take ports through `ports` before `start()`.
 *
 * Guest RAM is v86's own Wasm memory (`guestMemory`), not the partition's SharedArrayBuffer:
 * v86.wasm defines a non-shared memory that also holds v86's state, and its JIT emits modules
 * that import that memory as non-shared, so the memory cannot be swapped for a shared one without
 * rewriting the JIT's output as well. Host devices on this thread see guest RAM through the view.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { checkV86Internals, V86Views, type V86Cpu, type V86Emulator } from './v86-internals.ts';
import { X86PortMap } from './x86-port-map.ts';

export interface X86VpOptions {
  memoryBytes: number;
  bios: Uint8Array;
  vgaBios?: Uint8Array;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** The v86.wasm to run (e.g. one prepared with the Hyper-V hooks); default the package's own. */
  wasm?: Uint8Array | WebAssembly.Module;
  /** Extra Wasm imports for a prepared v86.wasm, by module name; they may use the VP once it exists. */
  imports?: (vp: () => X86Vp) => WebAssembly.Imports;
}

const require = createRequire(import.meta.url);

/**
 * Heap handed to v86's allocator before the processor starts (allocated and freed in 256 KiB
 * pieces, so it stays in the allocator's free lists). Without it v86's JIT grows the Wasm memory
 * now and then while the guest runs, and growing a non-shared memory detaches every view of
 * guest RAM the host holds (VMBus rings among them). Measured: a Linux boot with VMBus needs a
 * few MiB more than v86's own start.
 */
const V86_HEAP_RESERVE_CHUNKS = 128;
const V86_HEAP_RESERVE_CHUNK = 256 << 10;

/** The unmodified v86.wasm of the installed package. */
export function packagedV86Wasm(): Uint8Array {
  return readFileSync(require.resolve('v86/build/v86.wasm'));
}

/** An ArrayBuffer holding exactly the bytes (v86 takes images as ArrayBuffers). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

export class X86Vp {
  readonly ports: X86PortMap;
  readonly views: V86Views;
  private running = false;
  private destroyed = false;
  private readonly memoryBytesAtStart: number;

  private constructor(
    private readonly emulator: V86Emulator,
    readonly cpu: V86Cpu,
  ) {
    this.ports = new X86PortMap(cpu);
    this.views = new V86Views(cpu);
    const chunks: number[] = [];
    for (let i = 0; i < V86_HEAP_RESERVE_CHUNKS; i++) chunks.push(cpu.wm.exports.v86_malloc(V86_HEAP_RESERVE_CHUNK));
    for (const p of chunks) cpu.wm.exports.v86_free(p);
    this.memoryBytesAtStart = cpu.wasm_memory.buffer.byteLength;
  }

  /** True once v86's Wasm memory has grown since the VP was created (views of it were detached). */
  get memoryGrew(): boolean {
    return this.cpu.wasm_memory.buffer.byteLength !== this.memoryBytesAtStart;
  }

  /** Where guest RAM lies in v86's Wasm memory. */
  get ramWindow(): { memory: WebAssembly.Memory; offset: number; bytes: number } {
    return { memory: this.cpu.wasm_memory, offset: this.cpu.mem8.byteOffset, bytes: this.cpu.mem8.length };
  }

  /** Adds a file to the fw_cfg directory SeaBIOS reads (e.g. `acpi/…`: an extra ACPI table). Before start(). */
  addFirmwareFile(name: string, data: Uint8Array): void {
    if (this.running) throw new Error('x86 VP: firmware files are added before the VP starts');
    if (name.length >= 56) throw new Error(`fw_cfg file name "${name}" is longer than 55 characters`);
    this.cpu.option_roms.push({ name, data: data.slice() });
  }

  static async create(opts: X86VpOptions): Promise<X86Vp> {
    const { V86 } = (await import('v86')) as unknown as { V86: new (o: object) => V86Emulator };
    const wasm = opts.wasm ?? packagedV86Wasm();
    let vp: X86Vp | undefined;
    const extra = opts.imports?.(() => {
      if (!vp) throw new Error('x86 VP: a hook ran before the VP was created');
      return vp;
    });
    const emulator = new V86({
      wasm_fn: async (env: WebAssembly.Imports) => {
        const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>);
        return (await WebAssembly.instantiate(module, { ...env, ...extra })).exports;
      },
      memory_size: opts.memoryBytes,
      bios: { buffer: ownBuffer(opts.bios) },
      ...(opts.vgaBios ? { vga_bios: { buffer: ownBuffer(opts.vgaBios) } } : {}),
      bzimage: { buffer: ownBuffer(opts.kernel) },
      ...(opts.initrd ? { initrd: { buffer: ownBuffer(opts.initrd) } } : {}),
      cmdline: opts.cmdline,
      // v86's PIIX4 power-management function: with it SeaBIOS builds the ACPI tables, and Linux
      // finds the local APIC and IOAPIC in the MADT (the MP table alone leaves the APIC off).
      acpi: true,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
    vp = new X86Vp(emulator, checkV86Internals(emulator));
    return vp;
  }

  /** Guest physical memory: 0 .. memoryBytes. */
  get guestMemory(): Uint8Array {
    return this.views.mem8;
  }

  /** Guest instructions retired (v86's counter, wraps at 2^32). */
  get instructions(): number {
    return this.emulator.get_instruction_counter();
  }

  start(): void {
    if (this.destroyed) throw new Error('x86 VP: already destroyed');
    if (this.running) return;
    this.running = true;
    void this.emulator.run();
  }

  /**
   * Writes host data into guest memory, dropping v86's compiled code for those pages first (the
   * JIT caches code by page and would otherwise run stale instructions, e.g. a hypercall page).
   */
  writeGuest(gpa: number, data: Uint8Array): void {
    const ram = this.views.mem8;
    if (!Number.isInteger(gpa) || gpa < 0 || gpa + data.length > ram.length) {
      throw new RangeError(`x86 VP: guest write 0x${gpa.toString(16)}+${data.length} is outside guest memory`);
    }
    this.cpu.jit_dirty_cache(gpa, gpa + data.length);
    ram.set(data, gpa);
  }

  /** Stops the processor and frees v86 (its timers included), so the thread can end. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.running = false;
    await this.emulator.destroy();
  }
}
