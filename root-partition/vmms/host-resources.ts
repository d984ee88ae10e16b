/**
 * The host's limits on VMs (the hypervisor host part's budget): how much guest memory may be
 * committed by running VMs together, and how many VMs may be defined. Checked before a start,
 * so a VM that does not fit is refused with the numbers, never half-started.
 */
import { totalmem } from 'node:os';

export interface HostLimits {
  /** Guest memory of all running VMs together; default half the host's RAM. */
  memoryBudgetBytes: number;
  maxVms: number;
  /** Running VMs at once. */
  maxRunningVms: number;
}

export function defaultHostLimits(): HostLimits {
  return { memoryBudgetBytes: Math.floor(totalmem() / 2), maxVms: 256, maxRunningVms: 64 };
}

const MiB = 1024 * 1024;

/** null when a VM of `memoryBytes` may start next to VMs already holding `committedBytes`. */
export function admissionProblem(limits: HostLimits, memoryBytes: number, committedBytes: number, runningVms: number): string | null {
  if (runningVms >= limits.maxRunningVms) return `the host runs ${runningVms} VMs, its limit`;
  if (committedBytes + memoryBytes > limits.memoryBudgetBytes) {
    return `not enough host memory: the VM needs ${Math.ceil(memoryBytes / MiB)} MiB, running VMs hold ${Math.ceil(committedBytes / MiB)} MiB of a ${Math.floor(limits.memoryBudgetBytes / MiB)} MiB budget`;
  }
  return null;
}
