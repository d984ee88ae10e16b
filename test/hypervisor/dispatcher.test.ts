import { describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import { HvCall, HvPortType } from '../../abi/hv-hypercall.ts';
import * as P from '../../abi/hv-cpuid.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { HypercallDispatcher } from '../../hypervisor/hypercall/dispatcher.ts';
import { childCallHandlers } from '../../hypervisor/hypercall/child-calls.ts';
import { encodeControl, resultReps, resultStatus } from '../../hypervisor/hypercall/control-word.ts';
import { Owner, PartitionControl } from '../../hypervisor/partition-control.ts';
import { PortTable } from '../../hypervisor/ports.ts';

function setup(privHi = P.HV_POST_MESSAGES | P.HV_SIGNAL_EVENTS | P.HV_ACCESS_PARTITION_ID | P.HV_ACCESS_VP_REGISTERS) {
  const mem = new GuestMemory(1 << 20);
  const ctl = PartitionControl.create(2, 5);
  const ports = new PortTable(ctl, mem);
  const regs = new Map<number, bigint>();
  const started: [number, number][] = [];
  const d = new HypercallDispatcher(
    mem,
    childCallHandlers({
      partitionId: 5,
      vp: 0,
      vpCount: 2,
      ports,
      getRegister: (name, out, at) => {
        if (!regs.has(name)) return HvStatus.InvalidParameter;
        out.setBigUint64(at, regs.get(name)!, true);
        return HvStatus.Success;
      },
      setRegister: (name, v, at) => {
        if (name === 0xdead) return HvStatus.InvalidParameter;
        regs.set(name, v.getBigUint64(at, true));
        return HvStatus.Success;
      },
      startVp: (i, rip) => {
        started.push([i, rip]);
        return HvStatus.Success;
      },
    }),
    () => [0, privHi],
  );
  const call = (code: number, inGpa: number, outGpa: number, o: Parameters<typeof encodeControl>[1] = {}) => {
    const [lo, hi] = encodeControl(code, o);
    return d.call(lo, hi, inGpa, outGpa);
  };
  return { mem, ctl, ports, d, call, regs, started };
}

describe('hypercall dispatcher: status paths', () => {
  it('rejects an unknown call code', () => {
    const { call } = setup();
    expect(resultStatus(call(0x7fff, 0x1000, 0x2000))).toBe(HvStatus.InvalidHypercallCode);
    expect(resultStatus(call(0x0001, 0x1000, 0x2000))).toBe(HvStatus.InvalidHypercallCode);
  });

  it('returns ACCESS_DENIED for root-only calls and missing privileges, ahead of input errors', () => {
    const { call } = setup(0);
    for (const code of [
      HvCall.CreatePartition,
      HvCall.DeletePartition,
      HvCall.CreatePort,
      HvCall.ConnectPort,
      HvCall.InstallIntercept,
      HvCall.AssertVirtualInterrupt,
      HvCall.MapGpaPages,
    ]) {
      expect(resultStatus(call(code, 0x1001, 0x2000))).toBe(HvStatus.AccessDenied); // misaligned, still ACCESS_DENIED
    }
    expect(resultStatus(call(HvCall.PostMessage, 0x1000, 0))).toBe(HvStatus.AccessDenied);
    expect(resultStatus(call(HvCall.GetPartitionId, 0, 0x2000))).toBe(HvStatus.AccessDenied);
  });

  it('enforces the control-word rules', () => {
    const { d, call } = setup();
    const [lo, hi] = encodeControl(HvCall.GetPartitionId);
    expect(resultStatus(d.call(lo | 0x08000000, hi, 0, 0x2000))).toBe(HvStatus.InvalidHypercallInput); // RsvdZ 30:27
    expect(resultStatus(d.call(lo, hi | 0x00001000, 0, 0x2000))).toBe(HvStatus.InvalidHypercallInput); // RsvdZ 47:44
    expect(resultStatus(d.call(lo, hi | 0x10000000, 0, 0x2000))).toBe(HvStatus.InvalidHypercallInput); // RsvdZ 63:60
    expect(resultStatus(call(HvCall.GetPartitionId, 0, 0x2000, { varHeaderQwords: 1 }))).toBe(HvStatus.InvalidHypercallInput);
    expect(resultStatus(call(HvCall.GetPartitionId, 0, 0x2000, { repCount: 1 }))).toBe(HvStatus.InvalidHypercallInput); // simple call with reps
    expect(resultStatus(call(HvCall.GetVpRegisters, 0x1000, 0x2000, { repCount: 0 }))).toBe(HvStatus.InvalidHypercallInput); // rep call without
    expect(resultStatus(call(HvCall.GetVpRegisters, 0x1000, 0x2000, { repCount: 2, repStart: 2 }))).toBe(HvStatus.InvalidHypercallInput);
    expect(resultStatus(call(HvCall.PostMessage, 0x1000, 0, { fast: true }))).toBe(HvStatus.InvalidHypercallInput); // not fast-capable
  });

  it('enforces alignment, page crossing, overlap and range of the parameter blocks', () => {
    const { call } = setup();
    expect(resultStatus(call(HvCall.GetPartitionId, 0, 0x2004))).toBe(HvStatus.InvalidAlignment);
    expect(resultStatus(call(HvCall.PostMessage, 0x1f08, 0))).toBe(HvStatus.InvalidAlignment); // 256 bytes cross the page
    expect(resultStatus(call(HvCall.PostMessage, 1 << 20, 0))).toBe(HvStatus.InvalidAlignment); // outside RAM
    expect(resultStatus(call(HvCall.GetVpRegisters, 0x3000, 0x3010, { repCount: 1 }))).toBe(HvStatus.InvalidAlignment); // overlap
    expect(resultStatus(call(HvCall.GetVpRegisters, 0x3000, 0x3ff8, { repCount: 1 }))).toBe(HvStatus.InvalidAlignment); // output crosses
  });

  it('runs a simple call and writes its output', () => {
    const { call, mem } = setup();
    expect(resultStatus(call(HvCall.GetPartitionId, 0, 0x2000))).toBe(HvStatus.Success);
    expect(mem.readU64(0x2000)).toBe(5n);
  });

  it('runs rep calls from the start index and reports reps completed, stopping at a failing element', () => {
    const { call, mem, regs } = setup();
    regs.set(0x90002, 0x1234n);
    regs.set(0x90003, 0n);
    const input = 0x3000;
    mem.writeU64(input, 0xffffffffffffffffn); // HV_PARTITION_ID_SELF
    mem.writeU32(input + 8, 0xfffffffe); // HV_VP_INDEX_SELF
    mem.writeU32(input + 16, 0x90003);
    mem.writeU32(input + 20, 0x90002);
    mem.writeU32(input + 24, 0x99999);
    let r = call(HvCall.GetVpRegisters, input, 0x4000, { repCount: 2 });
    expect([resultStatus(r), resultReps(r)]).toEqual([HvStatus.Success, 2]);
    expect(mem.readU64(0x4010)).toBe(0x1234n);
    mem.writeU64(0x4000, 0xaan);
    r = call(HvCall.GetVpRegisters, input, 0x4000, { repCount: 2, repStart: 1 });
    expect([resultStatus(r), resultReps(r)]).toEqual([HvStatus.Success, 2]);
    expect(mem.readU64(0x4000)).toBe(0xaan); // elements before the start index are untouched
    r = call(HvCall.GetVpRegisters, input, 0x4000, { repCount: 3 });
    expect([resultStatus(r), resultReps(r)]).toEqual([HvStatus.InvalidParameter, 2]);
    mem.writeU32(input + 8, 1); // another VP
    expect(resultStatus(call(HvCall.GetVpRegisters, input, 0x4000, { repCount: 1 }))).toBe(HvStatus.InvalidVpIndex);
  });

  it('SetVpRegisters checks its reserved bytes per element', () => {
    const { call, mem, regs } = setup();
    const input = 0x3000;
    mem.writeU64(input, 0xffffffffffffffffn);
    mem.writeU32(input + 8, 0xfffffffe);
    mem.writeU32(input + 16, 0x20000);
    mem.writeU64(input + 32, 77n);
    mem.writeU32(input + 48, 0x20001);
    mem.writeU32(input + 52, 1); // RsvdZ
    const r = call(HvCall.SetVpRegisters, input, 0, { repCount: 2 });
    expect([resultStatus(r), resultReps(r)]).toEqual([HvStatus.InvalidParameter, 1]);
    expect(regs.get(0x20000)).toBe(77n);
  });

  it('copies the input out of guest memory before the handler reads it', () => {
    const { call, mem, ports, ctl } = setup();
    ports.createPort(Owner.Root, 1, { type: HvPortType.Message });
    ports.connectPort(Owner.Child, 0x100, 1);
    mem.writeU32(0x1000, 0x100);
    mem.writeU32(0x1008, 1);
    mem.writeU32(0x100c, 4);
    mem.write(0x1010, Buffer.from('ping'));
    expect(resultStatus(call(HvCall.PostMessage, 0x1000, 0))).toBe(HvStatus.Success);
    mem.write(0x1010, Buffer.from('XXXX'));
    expect(Buffer.from(ports.takeRootMessage(1)!.subarray(16, 20)).toString()).toBe('ping');
    expect(ctl.i32[0]).toBeGreaterThan(0); // the root doorbell rang
  });

  it('accepts the fast form of HvCallSignalEvent and checks its reserved field', () => {
    const { d, ports } = setup();
    ports.createPort(Owner.Root, 2, { type: HvPortType.Event, baseFlag: 10, flagCount: 2 });
    ports.connectPort(Owner.Child, 0x101, 2);
    const [lo, hi] = encodeControl(HvCall.SignalEvent, { fast: true });
    expect(resultStatus(d.callFast(lo, hi, 0x101, 1, 0, 0))).toBe(HvStatus.Success);
    expect(resultStatus(d.callFast(lo, hi, 0x101, 2, 0, 0))).toBe(HvStatus.InvalidParameter); // flag ≥ count
    expect(resultStatus(d.callFast(lo, hi, 0x101, 0x10000, 0, 0))).toBe(HvStatus.InvalidParameter); // RsvdZ
    const flags: number[] = [];
    ports.drainRootEvents((f) => flags.push(f));
    expect(flags).toEqual([11]);
  });

  it('refuses the 17th message on a port with INSUFFICIENT_BUFFERS until the root takes one', () => {
    const { ports } = setup();
    ports.createPort(Owner.Root, 1, { type: HvPortType.Message });
    ports.connectPort(Owner.Child, 0x100, 1);
    for (let i = 0; i < 16; i++) expect(ports.postMessage(Owner.Child, 0x100, 1, new Uint8Array([i]))).toBe(HvStatus.Success);
    expect(ports.postMessage(Owner.Child, 0x100, 1, new Uint8Array([16]))).toBe(HvStatus.InsufficientBuffers);
    expect(ports.takeRootMessage(1)![16]).toBe(0);
    expect(ports.postMessage(Owner.Child, 0x100, 1, new Uint8Array([16]))).toBe(HvStatus.Success);
  });

  it('starts another VP through HvCallStartVirtualProcessor with the function index as RIP', () => {
    const { call, mem, started } = setup(P.HV_START_VIRTUAL_PROCESSOR);
    mem.writeU64(0x3000, 0xffffffffffffffffn);
    mem.writeU32(0x3008, 1);
    mem.writeU64(0x3010, 42n);
    expect(resultStatus(call(HvCall.StartVirtualProcessor, 0x3000, 0))).toBe(HvStatus.Success);
    mem.writeU32(0x3008, 2);
    expect(resultStatus(call(HvCall.StartVirtualProcessor, 0x3000, 0))).toBe(HvStatus.InvalidVpIndex);
    expect(started).toEqual([[1, 42]]);
  });
});
