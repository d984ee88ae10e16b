/**
 * Helpers of the fault-injection suite: real VMMS instances and real worker processes (the VMMS
 * fixture records and cleans them up), plus what a test needs to disturb and inspect them —
 * the worker processes of a VM as the kernel lists them, SIGSTOP/SIGCONT.
 */
import { readdirSync, readFileSync } from 'node:fs';

export { MiB, processAlive, testImages, VmmsFixture, waitFor } from '../vmms/vmms-fixture.ts';

/** Every live (non-zombie) process whose title is `tsvisor-vmwp <vmId>`: the VM's workers. */
export function workersOf(vmId: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').startsWith(`tsvisor-vmwp ${vmId}`)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') pids.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

export const progress = (text: string) => [...text.matchAll(/progress round=(\d+)/g)].map((m) => Number(m[1])).at(-1) ?? 0;
