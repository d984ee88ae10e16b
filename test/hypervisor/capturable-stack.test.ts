/**
 * Capturable stacks (rewrite option `capturable`: Asyncify on the preemption point and the
 * exits): a VP stopped deep inside a recursive kernel unwinds its whole Wasm stack into a
 * buffer; memory, mutable globals and that buffer are copied into a fresh memory and a fresh
 * instance, which rewinds and finishes with the result of an uninterrupted run.
 * Not wired into saved state yet (docs/guest-abi.md §9); this proves the mechanism on a real image.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BOOT_FLAG_ENLIGHTENED } from '../../abi/platform.ts';
import { writeBootInfo } from '../../hypervisor/boot-info.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { loadGuestImage, type GuestImage } from '../../hypervisor/image-loader.ts';
import { CAPTURABLE_REWRITE, GLOBAL_EXPORT_PREFIX } from '../../hypervisor/rewrite/rewrite-abi.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

const MEMORY = 16 << 20;
/** Asyncify's buffer: [position, end] then the unwound frames (a page near the top of RAM). */
const STACK_BUFFER = MEMORY - 64 * 1024;
const BUDGET = 1000;

class Halted extends Error {}

interface Asyncify {
  boot(): number;
  asyncify_start_unwind(p: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(p: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
}

/** One VP on this thread: minimal platform stubs, COM1 captured; `onPreempt` decides each preemption. */
function instantiate(image: GuestImage, mem: GuestMemory, onPreempt: (calls: number, e: Asyncify) => void) {
  let out = '';
  let calls = 0;
  const hv: Record<string, unknown> = {};
  for (const i of WebAssembly.Module.imports(image.module)) if (i.module === 'hv' && i.kind === 'function') hv[i.name] = () => 0;
  Object.assign(hv, {
    vp_index: new WebAssembly.Global({ value: 'i32', mutable: false }, 0),
    rdmsr: () => 0n,
    inb: (port: number) => (port === 0x3fd ? 0x60 : 0),
    outsb: (port: number, gpa: number, n: number) => {
      if (port === 0x3f8) out += Buffer.from(mem.read(gpa >>> 0, n >>> 0)).toString('latin1');
      return n;
    },
    halt: () => {
      throw new Halted();
    },
  });
  let e!: Asyncify;
  const instance = new WebAssembly.Instance(image.module, {
    env: { memory: mem.memory },
    hv: hv as WebAssembly.ModuleImports,
    tsvisor: {
      preempt: () => {
        onPreempt(++calls, e);
        return BUDGET;
      },
      take_interrupt: () => -1,
      iret: () => {},
    },
  });
  e = instance.exports as unknown as Asyncify;
  return { instance, exports: e, out: () => out, calls: () => calls };
}

function freshMemory(image: GuestImage, cmdline: string): GuestMemory {
  const mem = new GuestMemory(MEMORY);
  for (const s of image.segments) mem.write(s.offset, s.bytes);
  writeBootInfo(mem, { vpCount: 1, partitionId: 1, flags: BOOT_FLAG_ENLIGHTENED, cmdline, imageEnd: image.dataEnd });
  return mem;
}

function runToHalt(f: () => void): void {
  expect(f).toThrow(Halted);
}

describe('capturable stacks', () => {
  it('a VP unwound mid-recursion and rewound in a fresh instance and memory ends with the uninterrupted result', async () => {
    await buildGuests(['cpu-kernels']);
    const image = loadGuestImage(readFileSync(guestImagePath('cpu-kernels')), { rewrite: CAPTURABLE_REWRITE });
    expect(WebAssembly.Module.exports(image.module).map((x) => x.name)).toContain('asyncify_start_unwind');
    const cmdline = 'kernel=4 n=3';

    const straight = instantiate(image, freshMemory(image, cmdline), () => {});
    runToHalt(() => straight.exports.boot());
    const expected = /sum=(\d+)/.exec(straight.out())![1];
    expect(straight.calls()).toBeGreaterThan(100);

    // Run A: unwind at the 100th preemption point (deep in fib), as a park would.
    const memA = freshMemory(image, cmdline);
    const a = instantiate(image, memA, (calls, e) => {
      if (calls === 100) {
        memA.writeU32(STACK_BUFFER, STACK_BUFFER + 8);
        memA.writeU32(STACK_BUFFER + 4, STACK_BUFFER + 64 * 1024 - 16);
        e.asyncify_start_unwind(STACK_BUFFER);
      }
    });
    a.exports.boot();
    a.exports.asyncify_stop_unwind();
    const frames = memA.readU32(STACK_BUFFER) - (STACK_BUFFER + 8);
    expect(frames).toBeGreaterThan(100); // many fib frames
    expect(a.out()).not.toContain('sum=');
    const globals = Object.entries(a.instance.exports)
      .filter(([n]) => n.startsWith(GLOBAL_EXPORT_PREFIX))
      .map(([n, g]) => [n, (g as WebAssembly.Global).value] as const);
    expect(globals.length).toBeGreaterThan(0);

    // Run B: a fresh memory holding A's bytes, a fresh instance holding A's globals, rewound.
    const memB = new GuestMemory(MEMORY);
    memB.write(0, memA.read(0, MEMORY));
    let rewound = false;
    const b = instantiate(image, memB, (_calls, e) => {
      if (e.asyncify_get_state() === 2) {
        e.asyncify_stop_rewind();
        rewound = true;
      }
    });
    for (const [n, v] of globals) (b.instance.exports[n] as WebAssembly.Global).value = v;
    b.exports.asyncify_start_rewind(STACK_BUFFER);
    runToHalt(() => b.exports.boot());
    expect(rewound).toBe(true);
    expect(b.out()).toContain(`sum=${expected}\n`);
    expect(a.out() + b.out()).toBe(straight.out());
  }, 120_000);
});
