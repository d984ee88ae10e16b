/**
 * Two VMs on one VMMS switch for `bench net`: a real VMMS in this process (it owns the switch,
 * as the daemon does) and a worker process per VM, so frames cross processes as in any run:
 * VM A's worker → the switch's socket → VMMS → VM B's worker. The guests are the reference
 * images (ref-emulated with an NE2000, ref-enlightened with a synthetic NIC) driven through
 * their serial shells.
 */
import { readFileSync } from 'node:fs';
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import type { VpCounterName } from '../../hypervisor/partition-control.ts';
import { guestImagePath } from '../../scripts/build-guests.ts';

export const PROMPT = 'tsvisor> ';
export type NicKind = 'emulated' | 'synthetic';

/** The VM's counters and CPU at one instant. */
export interface VmSample {
  vp: Record<VpCounterName, number>;
  /** utime + stime of every thread of the worker, µs. */
  cpuUs: number;
}

/** USER_HZ, what /proc/<pid>/stat counts in. */
const CLOCK_TICKS = 100;

export function workerCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) / CLOCK_TICKS) * 1e6;
}

export class BenchVm {
  constructor(
    readonly vmms: Vmms,
    readonly name: string,
    readonly mac: string,
    readonly ip: string,
  ) {}

  /** Types a line on the console; what the guest printed before its next prompt. */
  async command(line: string, timeoutMs = 60_000): Promise<string> {
    const start = this.vmms.console(this.name).length;
    await this.vmms.consoleInput(this.name, new TextEncoder().encode(line + '\r'));
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = this.vmms.console(this.name);
      const at = text.indexOf(PROMPT, start);
      if (at >= 0) return text.slice(start, at);
      if (Date.now() > end) throw new Error(`${this.name}: no prompt after "${line}" in ${timeoutMs} ms; console:\n${text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** The VM's counters summed over its VPs, and its worker's CPU. */
  async sample(): Promise<VmSample> {
    const c = await this.vmms.counters(this.name);
    const vp = { ...c.vps[0]! };
    for (const other of c.vps.slice(1)) for (const k of Object.keys(vp) as VpCounterName[]) vp[k] += other[k];
    return { vp, cpuUs: workerCpuUs(this.vmms.get(this.name)!.processId!) };
  }

  /** The netvsc driver's `counters` line as numbers (queues, received, rx_packets, rx_sub, …). */
  async netvscCounters(): Promise<Record<string, number>> {
    const line = /netvsc: (.*)/.exec(await this.command('counters'))?.[1];
    if (!line) throw new Error(`${this.name}: no netvsc counters`);
    return Object.fromEntries(
      line
        .trim()
        .split(/\s+/)
        .map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]),
    );
  }

  /** The guest stack's count of datagrams its discard port took. */
  async discarded(): Promise<number> {
    const m = /udp_discarded=(\d+)/.exec(await this.command('counters'));
    if (!m) throw new Error(`${this.name}: no udp_discarded in its counters`);
    return Number(m[1]);
  }
}

/** What sets a pair apart beyond its NIC kind: VPs per VM and the synthetic adapters' channel cap. */
export interface PairOptions {
  vpCount?: number;
  maxChannels?: number;
}

/**
 * Defines and starts two VMs of `kind` on `switchName` (named after the kind and `subnet`, which
 * also picks their addresses and MACs), gives them addresses, and checks they ping.
 */
export async function startPair(vmms: Vmms, kind: NicKind, switchName: string, subnet: number, o: PairOptions = {}): Promise<[BenchVm, BenchVm]> {
  const image = guestImagePath(kind === 'emulated' ? 'ref-emulated' : 'ref-enlightened');
  const vms = [1, 2].map((i) => {
    const name = `net-${kind}-${subnet}-${i}`;
    const mac = `00:15:5d:7${subnet}:00:0${i}`;
    vmms.defineVm({
      name,
      memoryBytes: 32 << 20,
      ...(o.vpCount ? { vpCount: o.vpCount } : {}),
      imagePath: image,
      automaticStopAction: 'turn-off',
      devices: [
        {
          kind: 'network-adapter',
          legacy: kind === 'emulated',
          switch: switchName,
          mac,
          ...(o.maxChannels !== undefined ? { maxChannels: o.maxChannels } : {}),
        },
      ],
    });
    return new BenchVm(vmms, name, mac, `10.9.${subnet}.${i}`);
  }) as [BenchVm, BenchVm];
  for (const vm of vms) {
    const r = await vmms.start(vm.name);
    if (r.returnValue !== 0) throw new Error(`${vm.name} did not start: ${r.error}`);
  }
  const deadline = Date.now() + 60_000;
  while (!vms.every((v) => vmms.console(v.name).includes(PROMPT))) {
    if (Date.now() > deadline) throw new Error(`the ${kind} VMs did not reach their shells`);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const vm of vms) await vm.command(`ip ${vm.ip}/24`);
  // Connectivity, not loss: a guest's ping waits a bounded number of steps, which a loaded host
  // can outlast, so one answer of three is enough here (the rows count what is lost).
  const ping = await vms[0].command(`ping ${vms[1].ip} 3 q`);
  if (Number(/(\d+) received/.exec(ping)?.[1] ?? 0) < 1) throw new Error(`the ${kind} VMs do not ping each other: ${ping}`);
  return vms;
}
