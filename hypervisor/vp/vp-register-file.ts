/**
 * HvCallGetVpRegisters / HvCallSetVpRegisters for one VP (TLFS 7.10): synthetic registers read
 * and write the MSR state, the version and feature registers answer as CPUID does, and the
 * architectural registers live in the VP's register file in the control block (registers.ts).
 */
import { HvStatus } from '../../abi/hv-status.ts';
import { P_PRIV_HI, P_PRIV_LO, type PartitionControl, VP_REGISTERS, vpBase } from '../partition-control.ts';
import { hypervisorCpuid } from './cpuid.ts';
import { HvRegister, registerSlot, registerToMsr } from './registers.ts';
import type { SyntheticMsrs } from './synthetic-msrs.ts';

export class VpRegisterFile {
  private readonly base: number;

  constructor(
    private readonly ctl: PartitionControl,
    vp: number,
    private readonly msrs: SyntheticMsrs,
  ) {
    this.base = vpBase(vp);
  }

  get(name: number, out: DataView, at: number): HvStatus {
    out.setBigUint64(at, 0n, true);
    out.setBigUint64(at + 8, 0n, true);
    const msr = registerToMsr(name);
    if (msr !== null) {
      const v = this.msrs.read(msr);
      if (typeof v !== 'bigint') return HvStatus.InvalidParameter;
      out.setBigUint64(at, v, true);
      return HvStatus.Success;
    }
    if (name === HvRegister.ExplicitSuspend || name === HvRegister.InterceptSuspend) return HvStatus.Success;
    if (name === HvRegister.HypervisorVersion || name === HvRegister.PrivilegesAndFeaturesInfo) {
      const r = hypervisorCpuid(name === HvRegister.HypervisorVersion ? 0x40000002 : 0x40000003, 0, {
        privilegesLo: this.ctl.i32[P_PRIV_LO >> 2],
        privilegesHi: this.ctl.i32[P_PRIV_HI >> 2],
        vpCount: this.ctl.vpCount,
      })!;
      for (let k = 0; k < 4; k++) out.setUint32(at + 4 * k, r[k] >>> 0, true);
      return HvStatus.Success;
    }
    const slot = registerSlot(name);
    if (slot < 0) return HvStatus.InvalidParameter;
    const from = this.base + VP_REGISTERS + slot * 16;
    for (let k = 0; k < 16; k++) out.setUint8(at + k, this.ctl.u8[from + k]);
    return HvStatus.Success;
  }

  set(name: number, value: DataView, at: number): HvStatus {
    const msr = registerToMsr(name);
    if (msr !== null) return this.msrs.write(msr, value.getBigUint64(at, true)) === true ? HvStatus.Success : HvStatus.InvalidParameter;
    const slot = registerSlot(name);
    if (slot < 0) return HvStatus.InvalidParameter;
    const to = this.base + VP_REGISTERS + slot * 16;
    for (let k = 0; k < 16; k++) this.ctl.u8[to + k] = value.getUint8(at + k);
    return HvStatus.Success;
  }
}
