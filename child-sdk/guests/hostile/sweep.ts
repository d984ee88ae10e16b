// The survivable part of the hostile guest: every trapping call with out-of-range arguments whose
// refusal is a value (a status, all-ones, zeros), never a fault. Each sweep counts its calls and
// folds the answers into a checksum, so a test can see the calls happened and were answered.
import { cpuid, hypercall, hypercallFast, inb, inl, insb, insl, insw, inw, mmioRead, mmioWrite, outb, outl, outsw, outw, rdmsr, wrmsr } from "../../platform/hv";
import { inputPage, outputPage, postMessage, signalEvent, status } from "../../hv/hypercall";
import { HvCall } from "../../../abi/hv-hypercall";
import { ramPages } from "../../kernel/boot-info";

/** xorshift32; a module global (per VP) is enough: the sweeps run on VP 0 only. */
let seed: u32 = 0x2545f491;
export function random(): u32 {
  seed ^= seed << 13;
  seed ^= seed >> 17;
  seed ^= seed << 5;
  return seed;
}

/** Wild 32-bit values: edges first, then random. */
export function wild(i: u32): u32 {
  switch (i & 7) {
    case 0: return 0;
    case 1: return 0xffffffff;
    case 2: return 0x80000000;
    case 3: return 0x7fffffff;
    case 4: return 0xfff;
    case 5: return 0x1001;
    default: return random();
  }
}

export let calls: u64 = 0;
export let answers: u64 = 0;
export let refused: u64 = 0;

function fold(v: u64): void {
  answers = (answers * 31 + v) & 0xffffffffffff;
}

const CPUID_OUT: usize = memory.data(16, 16);

export function cpuidSweep(): void {
  for (let leaf: u32 = 0; leaf < 0x40; leaf++) { cpuid(leaf, wild(leaf), CPUID_OUT); fold(load<u32>(CPUID_OUT)); calls++; }
  for (let leaf: u32 = 0x40000000; leaf < 0x40000110; leaf++) { cpuid(leaf, wild(leaf), CPUID_OUT); fold(load<u32>(CPUID_OUT + 4)); calls++; }
  for (let leaf: u32 = 0x80000000; leaf < 0x80000020; leaf++) { cpuid(leaf, 0, CPUID_OUT); calls++; }
  for (let i: u32 = 0; i < 512; i++) { cpuid(random(), random(), CPUID_OUT); calls++; }
}

/** Readable synthetic MSRs (docs/guest-abi.md §5.2). Unknown ones raise #GP: see faults.ts. */
export function msrReadSweep(): void {
  const ranges: u32[] = [0x40000000, 0x40000004, 0x40000010, 0x40000011, 0x40000020, 0x40000021, 0x40000080, 0x40000084, 0x40000090, 0x400000a0, 0x400000b0, 0x400000b8, 0x40000100, 0x40000106];
  for (let r = 0; r < ranges.length; r += 2) {
    for (let msr = ranges[r]; msr < ranges[r + 1]; msr++) {
      if (msr == 0x40000003 || msr == 0x40000084) continue; // RESET, EOM: write-only in effect
      fold(rdmsr(msr) & 0xffffffff);
      calls++;
    }
  }
}

/** Values the MSRs accept, however odd: GUEST_OS_ID anything, SINTs masked with any vector. */
export function msrWriteSweep(): void {
  const saved = rdmsr(0x40000000);
  for (let i: u32 = 0; i < 64; i++) { wrmsr(0x40000000, (<u64>wild(i) << 32) | wild(i + 3)); calls++; }
  wrmsr(0x40000000, saved);
  for (let sint: u32 = 0; sint < 16; sint++) {
    for (let v: u32 = 0; v < 256; v += 37) { wrmsr(0x40000090 + sint, 0x10000 | v); calls++; }
    // Reserved bits 63:19 are RsvdP (TLFS): accepted and dropped, not #GP.
    wrmsr(0x40000090 + sint, 0xffffffffffffffff);
    if (rdmsr(0x40000090 + sint) != 0x700ff) refused += 1000000;
    wrmsr(0x40000090 + sint, 0x10000);
    calls += 2;
  }
}

/**
 * Every call code with wild control bits and block addresses: unaligned, past the end of RAM,
 * crossing a page, overlapping, rep counts and start indexes out of range, fast and not, variable
 * header sizes and reserved bits. StartVirtualProcessor (0x99) is left to faults.ts: random
 * input could start a VP at a random function-table index, which is a fault by design.
 */
export function hypercallSweep(codes: u32): void {
  const ramEnd = <usize>ramPages() << 12;
  const input = inputPage();
  const output = outputPage();
  for (let i: u32 = 0; i < 4096; i++) store<u8>(input + i, <u8>random());
  const gpas: usize[] = [input, input + 1, input + 4092, ramEnd - 8, ramEnd, 0xfffffff8, output, input + 2048];
  for (let code: u32 = 0; code < codes; code++) {
    if (code == HvCall.StartVirtualProcessor) continue;
    const k = code & 7;
    const control: u32 = code | (k == 1 ? 0x10000 : 0) | (k == 2 ? (random() & 0x3ff) << 17 : 0) | (k == 3 ? 0x80000000 : 0) | (k == 4 ? 0x78000000 : 0);
    const controlHi: u32 = k == 5 ? 0xfff : k == 6 ? (random() & 0x0fff0fff) : k == 7 ? 0xf000f000 : 0;
    const r = hypercall(control, controlHi, gpas[random() & 7], gpas[random() & 7]);
    if (status(r) != 0) refused++;
    fold(r);
    calls++;
    // Register form: 64-bit "addresses" far above 4 GiB.
    const f = hypercallFast(code | 0x10000, controlHi, random(), random() | 1, wild(code), 0xffffffff);
    if (status(f) != 0) refused++;
    calls++;
  }
}

/** Garbage SynIC messages and events on every connection a guest might guess, VMBus's first. */
export function messageSweep(): void {
  const payload = inputPage() + 3072;
  for (let i: u32 = 0; i < 240; i++) store<u8>(payload + i, <u8>random());
  for (let i: u32 = 0; i < 400; i++) {
    // Channel-message types in the first word, so the VMBus server decodes some of them.
    store<u32>(payload, i % 24);
    const conn: u32 = i < 200 ? 1 + (i & 3) : random();
    const s = postMessage(conn, i & 1 ? 1 : wild(i), payload, (i * 7) % 250);
    if (s != 0) refused++;
    calls++;
    if (signalEvent(i < 200 ? i : random(), random()) != 0) refused++;
    calls++;
  }
}

const COM1: u32 = 0x3f8;

/**
 * Port I/O to every port: reads of each width, writes of wild values (not to COM1, which carries
 * this guest's report), string I/O with large counts into a buffer inside RAM.
 */
export function portSweep(stride: u32): void {
  for (let port: u32 = 0; port < 0x10000; port += 1) {
    fold(inb(port));
    calls++;
    if ((port % stride) != 0) continue;
    fold(inw(port)); fold(inl(port));
    calls += 2;
    if (port >= COM1 && port < COM1 + 8) continue;
    outb(port, wild(port)); outw(port, wild(port + 1)); outl(port, wild(port + 2));
    calls += 3;
  }
  const buffer = <usize>0x400000;
  const units: u32 = 0x40000; // 256 Ki units: 1 MiB of insl, inside RAM
  for (let port: u32 = 0x1f0; port < 0x1f8; port++) { insw(port, buffer, units); calls++; }
  insb(0xe9, buffer, units); insl(0xcfc, buffer, units); outsw(0x80, buffer, units);
  calls += 3;
}

/** MMIO well outside RAM: every size the ABI allows, addresses up to the top of the 32-bit space. */
export function mmioSweep(): void {
  const ramEnd = <usize>ramPages() << 12;
  for (let i: u32 = 0; i < 2048; i++) {
    const gpa: usize = ramEnd + ((<usize>random()) % (0xfffffff0 - ramEnd));
    const size: u32 = 1 << (i % 3);
    fold(mmioRead(gpa & ~(<usize>size - 1), size));
    mmioWrite(gpa & ~(<usize>size - 1), size, random());
    calls += 2;
  }
  fold(mmioRead(0xfffffffc, 4));
  calls++;
}
