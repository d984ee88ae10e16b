/**
 * The x86 VP's SynIC and hypercalls (hypervisor/x86/x86-partition.ts) without booting: guest RAM
 * is a window of a larger Wasm memory, as in v86, and the local APIC is a recorder of the vectors
 * the partition raises. The boot test (linux-guest.test.ts) checks the same paths with Linux.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import * as M from '../../abi/hv-msr.ts';
import { HvCall, HvPortType } from '../../abi/hv-hypercall.ts';
import { HvStatus } from '../../abi/hv-status.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { encodeControl } from '../../hypervisor/hypercall/control-word.ts';
import { Owner } from '../../hypervisor/partition-control.ts';
import { type X86HypercallRegisters, X86Partition, X86_SYNIC_PRIVILEGES_HI, X86_SYNIC_PRIVILEGES_LO } from '../../hypervisor/x86/x86-partition.ts';

const WASM_PAGE = 65536;
const RAM_OFFSET = 3 * WASM_PAGE; // what lies before the window stands for v86's own state
const RAM_BYTES = 16 * WASM_PAGE;
const SIMP_GPA = 0x10000;
const SIEFP_GPA = 0x11000;
const INPUT_GPA = 0x20000;
const VECTOR = 0xf3;
const SENTINEL = 0xa5;

function rig() {
  const memory = new WebAssembly.Memory({ initial: (RAM_OFFSET + RAM_BYTES) / WASM_PAGE + 2 });
  const all = new Uint8Array(memory.buffer);
  all.fill(SENTINEL, 0, RAM_OFFSET);
  all.fill(SENTINEL, RAM_OFFSET + RAM_BYTES);
  const raised: number[] = [];
  let deliveredNow = 0;
  let rootWork = 0;
  const faults: string[] = [];
  const p = new X86Partition({
    name: 'test',
    memory,
    ramOffset: RAM_OFFSET,
    ramBytes: RAM_BYTES,
    apic: { raise: (v) => raised.push(v), deliverNow: () => deliveredNow++ },
    onRootWork: () => rootWork++,
    onFault: (msr, write) => faults.push(`${msr.toString(16)}:${write}`),
  });
  const ram = new Uint8Array(memory.buffer, RAM_OFFSET, RAM_BYTES);
  const outside = () => all.subarray(0, RAM_OFFSET).every((b) => b === SENTINEL) && all.subarray(RAM_OFFSET + RAM_BYTES).every((b) => b === SENTINEL);
  return { p, ram, raised, faults, outside, deliveredNow: () => deliveredNow, rootWork: () => rootWork };
}

function enableSynic(p: X86Partition): void {
  p.writeMsr(M.HV_X64_MSR_SIMP, BigInt(SIMP_GPA) | 1n);
  p.writeMsr(M.HV_X64_MSR_SIEFP, BigInt(SIEFP_GPA) | 1n);
  p.writeMsr(M.HV_X64_MSR_SINT0 + 2, BigInt(VECTOR));
  p.writeMsr(M.HV_X64_MSR_SCONTROL, 1n);
}

function regs(code: number, r: Partial<X86HypercallRegisters> & { fast?: boolean; repCount?: number } = {}): X86HypercallRegisters {
  const [lo, hi] = encodeControl(code, { fast: r.fast, repCount: r.repCount });
  return { eax: lo, edx: hi, ebx: 0, ecx: 0, edi: 0, esi: 0, ...r };
}

/** HvCallPostMessage input at `gpa`: connection, type, size, payload. */
function writePostInput(ram: Uint8Array, gpa: number, connection: number, type: number, payload: Uint8Array): void {
  const dv = new DataView(ram.buffer, ram.byteOffset + gpa, 256);
  ram.fill(0, gpa, gpa + 256);
  dv.setUint32(0, connection, true);
  dv.setUint32(8, type, true);
  dv.setUint32(12, payload.length, true);
  ram.set(payload, gpa + 16);
}

describe('GuestMemory.window: guest RAM inside a larger Wasm memory', () => {
  it("maps GPA 0 to the window's offset and refuses every access beyond the window", () => {
    const memory = new WebAssembly.Memory({ initial: 4 });
    const all = new Uint8Array(memory.buffer);
    const g = GuestMemory.window(memory, WASM_PAGE, 2 * WASM_PAGE);
    expect(g.size).toBe(2 * WASM_PAGE);
    g.writeU32(0, 0x11223344);
    g.write(2 * WASM_PAGE - 2, Uint8Array.of(0xaa, 0xbb));
    expect([...all.subarray(WASM_PAGE, WASM_PAGE + 4)]).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect([...all.subarray(3 * WASM_PAGE - 2, 3 * WASM_PAGE + 1)]).toEqual([0xaa, 0xbb, 0]);
    expect(g.i32[0]).toBe(0x11223344);
    expect(() => g.write(2 * WASM_PAGE - 1, Uint8Array.of(1, 2))).toThrow(/outside guest memory/);
    expect(() => g.view(-1, 1)).toThrow(/outside guest memory/);
    expect(all.subarray(0, WASM_PAGE).every((b) => b === 0) && all.subarray(3 * WASM_PAGE + 1).every((b) => b === 0)).toBe(true);
    expect(() => GuestMemory.window(memory, 4, WASM_PAGE)).toThrow(/offset/); // not 8-byte aligned
    expect(() => GuestMemory.window(memory, 3 * WASM_PAGE, 2 * WASM_PAGE)).toThrow(/offset/); // past the memory's end
  });
});

describe('x86 partition: a memory that grew', () => {
  it('refuses every access to guest RAM once the memory grew (its views are detached), with an error that says so', () => {
    const memory = new WebAssembly.Memory({ initial: (RAM_OFFSET + RAM_BYTES) / WASM_PAGE });
    const p = new X86Partition({ name: 'grown', memory, ramOffset: RAM_OFFSET, ramBytes: RAM_BYTES, apic: { raise: () => {}, deliverNow: () => {} } });
    enableSynic(p);
    memory.grow(1);
    expect(() => p.hypercall(regs(HvCall.PostMessage, { ecx: INPUT_GPA }))).toThrow(/grown's RAM grew/);
    expect(() => p.writeMsr(M.HV_X64_MSR_EOM, 0n)).toThrow(/grew/);
    expect(() => p.readMsr(M.HV_X64_MSR_SIMP)).toThrow(/grew/);
    expect(() => p.postMessage(1, 1, Uint8Array.of(1))).toThrow(/grew/);
    expect(() => p.signalEvent(1, 0)).toThrow(/grew/);
    expect(() => p.pump()).toThrow(/grew/);
  });
});

describe('x86 partition: SynIC MSRs', () => {
  it('keeps SCONTROL, SIMP, SIEFP and SINTs as the TLFS gives them, and reports SVERSION 1', () => {
    const { p, faults } = rig();
    expect(p.privileges).toEqual([X86_SYNIC_PRIVILEGES_LO, X86_SYNIC_PRIVILEGES_HI]);
    expect(p.readMsr(M.HV_X64_MSR_SINT0 + 2)).toBe(0x10000n); // masked at reset
    enableSynic(p);
    expect(p.readMsr(M.HV_X64_MSR_SCONTROL)).toBe(1n);
    expect(p.readMsr(M.HV_X64_MSR_SVERSION)).toBe(1n);
    expect(p.readMsr(M.HV_X64_MSR_SIMP)).toBe(BigInt(SIMP_GPA) | 1n);
    expect(p.readMsr(M.HV_X64_MSR_SIEFP)).toBe(BigInt(SIEFP_GPA) | 1n);
    expect(p.readMsr(M.HV_X64_MSR_SINT0 + 2)).toBe(BigInt(VECTOR));
    expect(faults).toEqual([]);
  });

  it('refuses (as #GP) an unmasked SINT below vector 16, a page outside RAM and writes to SVERSION, changing nothing', () => {
    const { p, faults } = rig();
    enableSynic(p);
    p.writeMsr(M.HV_X64_MSR_SINT0 + 3, 0x0fn);
    p.writeMsr(M.HV_X64_MSR_SIMP, BigInt(RAM_BYTES) | 1n);
    p.writeMsr(M.HV_X64_MSR_SIMP, (1n << 40n) | BigInt(SIMP_GPA) | 1n); // a GPA above 4 GiB never aliases low RAM
    p.writeMsr(M.HV_X64_MSR_SVERSION, 2n);
    expect(p.readMsr(M.HV_X64_MSR_SINT0 + 3)).toBe(0x10000n);
    expect(p.readMsr(M.HV_X64_MSR_SIMP)).toBe(BigInt(SIMP_GPA) | 1n);
    expect(faults).toEqual([
      `${(M.HV_X64_MSR_SINT0 + 3).toString(16)}:true`,
      `${M.HV_X64_MSR_SIMP.toString(16)}:true`,
      `${M.HV_X64_MSR_SIMP.toString(16)}:true`,
      `${M.HV_X64_MSR_SVERSION.toString(16)}:true`,
    ]);
  });
});

describe('x86 partition: message and event delivery into the window', () => {
  const HOST_PORT = 0x100,
    HOST_EVENT_PORT = 0x200;

  function withHostPorts() {
    const r = rig();
    expect(r.p.ports.createPort(Owner.Child, HOST_PORT, { type: HvPortType.Message, targetVp: 0, targetSint: 2 })).toBe(HvStatus.Success);
    expect(r.p.ports.connectPort(Owner.Root, HOST_PORT, HOST_PORT)).toBe(HvStatus.Success);
    expect(r.p.ports.createPort(Owner.Child, HOST_EVENT_PORT, { type: HvPortType.Event, targetVp: 0, targetSint: 2, baseFlag: 0, flagCount: 2048 })).toBe(
      HvStatus.Success,
    );
    expect(r.p.ports.connectPort(Owner.Root, HOST_EVENT_PORT, HOST_EVENT_PORT)).toBe(HvStatus.Success);
    return r;
  }

  it('fails with INVALID_SYNIC_STATE before the guest enables its SynIC, and raises nothing', () => {
    const { p, raised } = withHostPorts();
    expect(p.postMessage(HOST_PORT, 1, Uint8Array.of(1))).toBe(HvStatus.InvalidSynicState);
    expect(raised).toEqual([]);
  });

  it("writes the message into SINT2's slot of the SIM page at the window's offset and raises the SINT's vector at once", () => {
    const { p, ram, raised, outside, deliveredNow } = withHostPorts();
    enableSynic(p);
    expect(p.postMessage(HOST_PORT, 1, Uint8Array.of(0xde, 0xad, 0xbe, 0xef))).toBe(HvStatus.Success);
    const slot = SIMP_GPA + 2 * 256;
    const dv = new DataView(ram.buffer, ram.byteOffset + slot, 256);
    expect(dv.getUint32(0, true)).toBe(1); // message type
    expect(ram[slot + 4]).toBe(4); // payload size
    expect([...ram.subarray(slot + 16, slot + 20)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(raised).toEqual([VECTOR]);
    expect(deliveredNow()).toBe(1); // outside an instruction: the APIC is asked to deliver now
    expect(outside()).toBe(true);
  });

  it('holds a second message while the slot is full (pending flag), and delivers it on EOM inside the instruction', () => {
    const { p, ram, raised, deliveredNow } = withHostPorts();
    enableSynic(p);
    const slot = SIMP_GPA + 2 * 256;
    expect(p.postMessage(HOST_PORT, 1, Uint8Array.of(1))).toBe(HvStatus.Success);
    expect(p.postMessage(HOST_PORT, 2, Uint8Array.of(2))).toBe(HvStatus.Success);
    expect(ram[slot]).toBe(1);
    expect(ram[slot + 5]! & 1).toBe(1); // MessagePending
    expect(raised).toEqual([VECTOR]);
    // The guest consumes the slot: type to 0, then EOM because MessagePending was set.
    ram.fill(0, slot, slot + 4);
    p.writeMsr(M.HV_X64_MSR_EOM, 0n);
    expect(ram[slot]).toBe(2);
    expect(ram[slot + 16]).toBe(2);
    expect(ram[slot + 5]! & 1).toBe(0);
    expect(raised).toEqual([VECTOR, VECTOR]);
    expect(deliveredNow()).toBe(1); // the EOM's vector waits for v86's next look, after the WRMSR
  });

  it("sets the event flag in SINT2's part of the SIEF page and raises the vector only when the flag was clear", () => {
    const { p, ram, raised } = withHostPorts();
    enableSynic(p);
    expect(p.signalEvent(HOST_EVENT_PORT, 37)).toBe(HvStatus.Success);
    expect(p.signalEvent(HOST_EVENT_PORT, 37)).toBe(HvStatus.Success);
    const word = new DataView(ram.buffer, ram.byteOffset + SIEFP_GPA + 2 * 256 + 4, 4).getUint32(0, true);
    expect(word).toBe(1 << 5);
    expect(raised).toEqual([VECTOR]);
  });
});

describe('x86 partition: hypercalls with the TLFS 32-bit convention', () => {
  const GUEST_CONN = 4,
    ROOT_PORT = 4,
    EVENT_CONN = 17,
    EVENT_PORT = 0x1001;

  function withRootPorts() {
    const r = rig();
    const got: Uint8Array[] = [];
    const flags: number[] = [];
    expect(r.p.ports.createPort(Owner.Root, ROOT_PORT, { type: HvPortType.Message })).toBe(HvStatus.Success);
    expect(r.p.ports.connectPort(Owner.Child, GUEST_CONN, ROOT_PORT)).toBe(HvStatus.Success);
    expect(r.p.ports.createPort(Owner.Root, EVENT_PORT, { type: HvPortType.Event, baseFlag: 1, flagCount: 1 })).toBe(HvStatus.Success);
    expect(r.p.ports.connectPort(Owner.Child, EVENT_CONN, EVENT_PORT)).toBe(HvStatus.Success);
    r.p.inbox.onMessage(ROOT_PORT, (m) => got.push(m));
    r.p.inbox.onEvent((f) => flags.push(f));
    return { ...r, got, flags };
  }

  it("HvPostMessage: input GPA in EBX:ECX, result in EDX:EAX, the message reaches the root's inbox as sent", () => {
    const { p, ram, got, rootWork, outside } = withRootPorts();
    writePostInput(ram, INPUT_GPA, GUEST_CONN, 1, Uint8Array.of(9, 8, 7));
    expect(p.hypercall(regs(HvCall.PostMessage, { ecx: INPUT_GPA }))).toEqual({ eax: HvStatus.Success, edx: 0 });
    expect(rootWork()).toBe(1);
    expect(p.pump()).toBe(1);
    expect(got).toHaveLength(1);
    const m = got[0]!;
    expect(new DataView(m.buffer, m.byteOffset).getUint32(0, true)).toBe(1);
    expect(m[4]).toBe(3);
    expect([...m.subarray(16, 19)]).toEqual([9, 8, 7]);
    expect(p.counters.postMessage).toBe(1);
    expect(outside()).toBe(true);
  });

  it('HvSignalEvent, fast: ConnectionId and FlagNumber in ECX and EBX', () => {
    const { p, flags, rootWork } = withRootPorts();
    expect(p.hypercall(regs(HvCall.SignalEvent, { fast: true, ecx: EVENT_CONN, ebx: 0 }))).toEqual({ eax: HvStatus.Success, edx: 0 });
    expect(rootWork()).toBe(1);
    p.pump();
    expect(flags).toEqual([1]);
    // Flag 1 of a one-flag port, an unknown connection, reserved bits.
    expect(p.hypercall(regs(HvCall.SignalEvent, { fast: true, ecx: EVENT_CONN, ebx: 1 })).eax).toBe(HvStatus.InvalidParameter);
    expect(p.hypercall(regs(HvCall.SignalEvent, { fast: true, ecx: 99 })).eax).toBe(HvStatus.InvalidConnectionId);
    expect(p.hypercall(regs(HvCall.SignalEvent, { fast: true, ecx: EVENT_CONN, ebx: 0x10000 })).eax).toBe(HvStatus.InvalidParameter);
    expect(rootWork()).toBe(1);
  });

  it('refuses hostile input GPAs with INVALID_ALIGNMENT, and other bad calls with their TLFS status, touching nothing', () => {
    const { p, ram, got, outside } = withRootPorts();
    writePostInput(ram, INPUT_GPA, GUEST_CONN, 1, Uint8Array.of(1));
    const call = (r: Partial<X86HypercallRegisters> & { fast?: boolean; repCount?: number }, code: number = HvCall.PostMessage) =>
      p.hypercall(regs(code, r)).eax;
    expect(call({ ecx: INPUT_GPA + 4 })).toBe(HvStatus.InvalidAlignment); // not 8-byte aligned
    expect(call({ ecx: INPUT_GPA + 4096 - 128 })).toBe(HvStatus.InvalidAlignment); // the 256 bytes cross a page
    expect(call({ ecx: RAM_BYTES })).toBe(HvStatus.InvalidAlignment); // outside RAM
    expect(call({ ecx: 0xfffff000 })).toBe(HvStatus.InvalidAlignment);
    expect(call({ ecx: INPUT_GPA, ebx: 1 })).toBe(HvStatus.InvalidAlignment); // EBX:ECX above 4 GiB, not an alias of INPUT_GPA
    expect(call({ ecx: INPUT_GPA, repCount: 1 })).toBe(HvStatus.InvalidHypercallInput); // a simple call with a rep count
    expect(call({ ecx: INPUT_GPA, fast: true })).toBe(HvStatus.InvalidHypercallInput); // PostMessage has no fast form
    expect(call({ ecx: INPUT_GPA }, 0x7777)).toBe(HvStatus.InvalidHypercallCode);
    expect(call({ ecx: INPUT_GPA }, HvCall.CreatePartition)).toBe(HvStatus.AccessDenied);
    new DataView(ram.buffer, ram.byteOffset + INPUT_GPA + 12, 4).setUint32(0, 241, true);
    expect(call({ ecx: INPUT_GPA })).toBe(HvStatus.InvalidParameter); // payload over 240 bytes
    writePostInput(ram, INPUT_GPA, 99, 1, Uint8Array.of(1));
    expect(call({ ecx: INPUT_GPA })).toBe(HvStatus.InvalidConnectionId);
    p.pump();
    expect(got).toEqual([]);
    expect(p.counters.postMessage).toBe(0);
    expect(outside()).toBe(true);
  });

  it("bounds what a flooding guest can queue: the root port's 16 buffers, then INSUFFICIENT_BUFFERS", () => {
    const { p, ram, got } = withRootPorts();
    writePostInput(ram, INPUT_GPA, GUEST_CONN, 1, Uint8Array.of(1));
    const statuses = Array.from({ length: 1000 }, () => p.hypercall(regs(HvCall.PostMessage, { ecx: INPUT_GPA })).eax);
    expect(statuses.filter((s) => s === HvStatus.Success)).toHaveLength(16);
    expect(statuses.slice(16).every((s) => s === HvStatus.InsufficientBuffers)).toBe(true);
    p.pump();
    expect(got).toHaveLength(16);
  });

  it('answers any register values with an HV_STATUS and never writes outside the RAM window (property)', () => {
    const { p, outside } = withRootPorts();
    enableSynic(p);
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(
        fc.record({ eax: u32, edx: u32, ebx: u32, ecx: u32, edi: u32, esi: u32 }),
        fc.constantFrom(0, HvCall.PostMessage, HvCall.SignalEvent, HvCall.GetPartitionId),
        (r, code) => {
          const rr = code === 0 ? r : { ...r, eax: (r.eax & ~0xffff) | code };
          const out = p.hypercall(rr);
          expect(out.eax).toBeGreaterThanOrEqual(0);
          expect(out.eax).toBeLessThanOrEqual(0xffff);
          expect(out.edx).toBeLessThanOrEqual(0xfff);
        },
      ),
      { numRuns: 2000 },
    );
    p.pump();
    expect(outside()).toBe(true);
  });
});

describe('x86 partition: synthetic timers', () => {
  const STIMER0_CONFIG = M.HV_X64_MSR_STIMER0_CONFIG,
    STIMER0_COUNT = M.HV_X64_MSR_STIMER0_CONFIG + 1;
  /** Linux's direct-mode STIMER0 (hv_ce_set_oneshot): enable, auto-enable, direct, HYPERV_STIMER0_VECTOR 0xED. */
  const TIMER_VECTOR = 0xed;
  const DIRECT = BigInt(M.HV_STIMER_ENABLE | M.HV_STIMER_AUTO_ENABLE | M.HV_STIMER_DIRECT | (TIMER_VECTOR << 4));
  const ms = (n: number) => new Promise((r) => setTimeout(r, n));
  const MS = 10_000; // reference time per millisecond (100 ns units)

  it('a direct-mode one-shot asserts its vector at its time, not before, from a host timer between slices; then it is disabled', async () => {
    const { p, raised, deliveredNow, faults } = rig();
    try {
      expect(p.privileges[0] & 0x8).toBe(0x8); // HV_ACCESS_SYNTHETIC_TIMER_REGS
      p.writeMsr(STIMER0_CONFIG, DIRECT);
      const due = p.referenceTime() + 40 * MS;
      p.writeMsr(STIMER0_COUNT, BigInt(due));
      expect(p.readMsr(STIMER0_COUNT)).toBe(BigInt(due));
      await ms(20);
      expect(raised).toEqual([]);
      await vi.waitFor(() => expect(raised).toEqual([TIMER_VECTOR]), { timeout: 2000, interval: 2 });
      expect(p.referenceTime()).toBeGreaterThanOrEqual(due); // never early
      expect(deliveredNow()).toBe(1); // outside an instruction: delivered at once (a halted processor wakes)
      expect(p.readMsr(STIMER0_CONFIG) & 1n).toBe(0n); // a one-shot disables itself
      await ms(60);
      expect(raised).toEqual([TIMER_VECTOR]);
      expect(faults).toEqual([]);
    } finally {
      p.dispose();
    }
  });

  it('a one-shot whose time has passed fires inside the WRMSR; a count of 0 disarms; reserved bits fault', () => {
    const { p, raised, deliveredNow, faults } = rig();
    try {
      p.writeMsr(STIMER0_CONFIG, DIRECT);
      p.writeMsr(STIMER0_COUNT, BigInt(Math.max(1, p.referenceTime() - 1)));
      expect(raised).toEqual([TIMER_VECTOR]);
      expect(deliveredNow()).toBe(0); // v86 takes it after the instruction
      p.writeMsr(STIMER0_COUNT, BigInt(p.referenceTime() + 10 * MS)); // auto-enable arms it again
      expect(p.readMsr(STIMER0_CONFIG) & 1n).toBe(1n);
      p.writeMsr(STIMER0_COUNT, 0n);
      expect(p.readMsr(STIMER0_CONFIG) & 1n).toBe(0n);
      p.writeMsr(STIMER0_CONFIG, 1n << 13n); // bits 15:13 RsvdZ
      expect(faults).toEqual([`${STIMER0_CONFIG.toString(16)}:true`]);
    } finally {
      p.dispose();
    }
  });

  it('a periodic timer in message mode posts HVMSG_TIMER_EXPIRED to its SINT each period while the guest frees the slot', async () => {
    const { p, ram, raised } = rig();
    try {
      enableSynic(p);
      p.writeMsr(M.HV_X64_MSR_SINT0 + 3, 0xf4n);
      const config = BigInt(M.HV_STIMER_ENABLE | M.HV_STIMER_PERIODIC) | (3n << BigInt(M.HV_STIMER_SINT_SHIFT));
      p.writeMsr(M.HV_X64_MSR_STIMER0_CONFIG + 2, config); // STIMER1
      const armed = p.referenceTime();
      p.writeMsr(M.HV_X64_MSR_STIMER0_CONFIG + 3, BigInt(10 * MS));
      const slot = SIMP_GPA + 3 * 256;
      const dv = new DataView(ram.buffer, ram.byteOffset + slot, 256);
      const expiries: bigint[] = [];
      for (let i = 0; i < 3; i++) {
        await vi.waitFor(() => expect(dv.getUint32(0, true)).toBe(0x80000010), { timeout: 2000, interval: 2 });
        expect(ram[slot + 4]).toBe(24); // payload size
        expect(dv.getUint32(16, true)).toBe(1); // TimerIndex
        expiries.push(dv.getBigUint64(24, true)); // ExpirationTime
        expect(dv.getBigUint64(32, true)).toBeGreaterThanOrEqual(dv.getBigUint64(24, true)); // DeliveryTime
        dv.setUint32(0, 0, true); // the guest takes the message
        p.writeMsr(M.HV_X64_MSR_EOM, 0n);
      }
      expect(Number(expiries[0]! - BigInt(armed))).toBeGreaterThanOrEqual(10 * MS);
      expect(expiries[1]! - expiries[0]!).toBeGreaterThanOrEqual(BigInt(10 * MS));
      expect(raised.filter((v) => v === 0xf4).length).toBeGreaterThanOrEqual(3);
      expect(p.readMsr(M.HV_X64_MSR_STIMER0_CONFIG + 2) & 1n).toBe(1n); // periodic timers stay enabled
    } finally {
      p.dispose();
    }
  });

  it('dispose stops the host timer: an armed timer fires no more', async () => {
    const { p, raised } = rig();
    p.writeMsr(STIMER0_CONFIG, DIRECT);
    p.writeMsr(STIMER0_COUNT, BigInt(p.referenceTime() + 5 * MS));
    p.dispose();
    await ms(30);
    expect(raised).toEqual([]);
  });
});
