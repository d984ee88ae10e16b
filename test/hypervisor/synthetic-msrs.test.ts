/**
 * SIMP, SIEFP and the hypercall MSR carry a 64-bit GPA page number (bits 63:12). A value above
 * 4 GiB must never be cut to its low 32 bits (it would alias low memory): it is kept whole, and
 * enabling a page outside guest RAM takes #GP.
 */
import { describe, expect, it } from 'vitest';
import * as M from '../../abi/hv-msr.ts';
import * as P from '../../abi/hv-cpuid.ts';
import { HvStatus } from '../../abi/hv-status.ts';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { P_PRIV_LO, PartitionControl } from '../../hypervisor/partition-control.ts';
import { ReferenceClock } from '../../hypervisor/reference-time.ts';
import { SyntheticTimers } from '../../hypervisor/synic/stimers.ts';
import { overlayPageGpa, postToSint, signalSintEvent, simpPage } from '../../hypervisor/synic/synic-delivery.ts';
import { GP, SyntheticMsrs } from '../../hypervisor/vp/synthetic-msrs.ts';

function setup(memoryBytes = 1 << 20) {
  const mem = new GuestMemory(memoryBytes);
  const ctl = PartitionControl.create(1, 3);
  ctl.i32[P_PRIV_LO >> 2] = P.HV_ACCESS_SYNIC_REGS | P.HV_ACCESS_HYPERCALL_MSRS;
  const clock = new ReferenceClock(ctl);
  const msrs = new SyntheticMsrs(ctl, mem, 0, clock, new SyntheticTimers(ctl, mem, 0, clock), {
    reset: () => {},
    crash: () => {},
    runtime100ns: () => 0,
  });
  return { mem, ctl, msrs };
}

const message = () => {
  const m = new Uint8Array(256);
  m[0] = 1;
  m[4] = 1;
  m[16] = 0x41;
  return m;
};

describe('overlay-page MSRs keep all 64 bits', () => {
  it.each([
    ['SIMP', M.HV_X64_MSR_SIMP],
    ['SIEFP', M.HV_X64_MSR_SIEFP],
  ])('%s: a page at 4 GiB + 0x5000 takes #GP and leaves the register and low memory alone', (_name, msr) => {
    const { mem, msrs } = setup();
    expect(msrs.write(msr, 0x1_0000_5001n)).toBe(GP);
    expect(msrs.write(msr, 0x8000_0000_0000_5001n)).toBe(GP);
    expect(msrs.write(msr, 0xffff_ffff_ffff_f001n)).toBe(GP);
    expect(msrs.read(msr)).toBe(0n);
    // Inside RAM: accepted, read back exactly.
    expect(msrs.write(msr, 0x5001n)).toBe(true);
    expect(msrs.read(msr)).toBe(0x5001n);
    expect(mem.u8.subarray(0x5000, 0x6000).every((b) => b === 0)).toBe(true);
  });

  it('a disabled page keeps its full GPA: read back unchanged, refused when enabled, never used', () => {
    const { mem, ctl, msrs } = setup();
    expect(msrs.write(M.HV_X64_MSR_SCONTROL, 1n)).toBe(true);
    expect(msrs.write(M.HV_X64_MSR_SIMP, 0x1_0000_5000n)).toBe(true);
    expect(msrs.read(M.HV_X64_MSR_SIMP)).toBe(0x1_0000_5000n);
    expect(msrs.write(M.HV_X64_MSR_SIMP, 0x1_0000_5001n)).toBe(GP);
    expect(simpPage(ctl, mem, 0)).toBe(-1);
    expect(postToSint(ctl, mem, 0, 2, message(), -1)).toBe(HvStatus.InvalidSynicState);
    expect(mem.u8.subarray(0, 0x10000).every((b) => b === 0)).toBe(true);
  });

  it('the hypercall page at 4 GiB + 0x3000 takes #GP; at 0x3000 it is enabled', () => {
    const { msrs } = setup();
    expect(msrs.write(M.HV_X64_MSR_GUEST_OS_ID, 0x8100n)).toBe(true);
    expect(msrs.write(M.HV_X64_MSR_HYPERCALL, 0x1_0000_3001n)).toBe(GP);
    expect(msrs.hypercallEnabled()).toBe(false);
    expect(msrs.write(M.HV_X64_MSR_HYPERCALL, 0x3001n)).toBe(true);
    expect(msrs.hypercallEnabled()).toBe(true);
    expect(msrs.read(M.HV_X64_MSR_HYPERCALL)).toBe(0x3001n);
  });

  it('decodes the page GPA from all 64 bits against the memory size', () => {
    const mem = new GuestMemory(1 << 20);
    expect(overlayPageGpa(0x5001n, mem)).toBe(0x5000);
    expect(overlayPageGpa(0x5000n, mem)).toBe(-1); // disabled
    expect(overlayPageGpa(0xff001n, mem)).toBe(0xff000);
    expect(overlayPageGpa(0x100001n, mem)).toBe(-1);
    expect(overlayPageGpa(0x1_0000_5001n, mem)).toBe(-1);
    expect(overlayPageGpa(-0xfffn, mem)).toBe(-1); // all ones as a signed i64
  });
});

describe('SynIC pages above 2 GiB', () => {
  it('delivers a message and an event flag into pages at 3 GiB − 8 KiB with exact bytes', () => {
    const size = 3 * 1024 ** 3;
    const { mem, ctl, msrs } = setup(size);
    const simp = size - 0x2000,
      siefp = size - 0x1000;
    expect(msrs.write(M.HV_X64_MSR_SCONTROL, 1n)).toBe(true);
    expect(msrs.write(M.HV_X64_MSR_SIMP, BigInt(simp) | 1n)).toBe(true);
    expect(msrs.write(M.HV_X64_MSR_SIEFP, BigInt(siefp) | 1n)).toBe(true);
    expect(msrs.write(M.HV_X64_MSR_SINT0 + 2, 0x32n)).toBe(true);
    expect(postToSint(ctl, mem, 0, 2, message(), -1)).toBe(HvStatus.Success);
    expect(mem.readU32(simp + 2 * 256)).toBe(1);
    expect(mem.u8[simp + 2 * 256 + 16]).toBe(0x41);
    expect(signalSintEvent(ctl, mem, 0, 2, 37)).toBe(HvStatus.Success);
    expect(mem.readU32(siefp + 2 * 256 + 4)).toBe(1 << 5);
  });
});
