/**
 * The VM rows of `bench net`, measured on one pair of VMs (bench/net/vm-pair.ts): ping-pong
 * latency and a UDP stream at each frame size from A to B. Time comes from the switch's tap
 * (wire-tap.ts): a stream runs from its first datagram entering the switch to the reply to the
 * fence ping queued behind the last one (B has taken everything by then). Frames are what B's
 * stack counted on its discard port; exits, interrupts and signals come from each worker's VP
 * counters, CPU from /proc for both workers and from this process (VMMS and its switch).
 */
import type { VirtualSwitch } from '../../root-partition/vswitch/virtual-switch.ts';
import type { BenchVm, NicKind, VmSample } from './vm-pair.ts';
import { WireTap } from './wire-tap.ts';

export interface NetVmRow {
  kind: NicKind;
  nic: string;
  /** Frame length without the FCS (60 = a 64-byte minimum frame on the wire). */
  frameBytes: number;
  sent: number;
  received: number;
  /** Sent but never counted by the receiver (dropped on the way: NIC full, switch backlog). */
  lost: number;
  seconds: number;
  framesPerSecond: number;
  /** Ethernet payload bits (frame minus the 14-byte header) per second, Mbit/s. */
  mbitPerSecond: number;
  perFrame: PerFrame;
}

export interface PerFrame {
  /** Exits of the sending VM per frame it sent, its clock reads (MSR) left out. */
  senderExits: number;
  /** Exits of the receiving VM per frame it received, clock reads left out. */
  receiverExits: number;
  senderInterrupts: number;
  receiverInterrupts: number;
  /** Reference-time MSR reads of both VMs per received frame (netvsc's wait step reads the clock). */
  clockReads: number;
  /** Hypercall SignalEvent (guest → host) plus SynIC events set (host → guest), both VMs, per received frame. */
  signals: number;
  /** CPU of both workers and of VMMS (the switch), µs per received frame. */
  cpuUs: number;
}

export interface NetLatencyRow {
  kind: NicKind;
  nic: string;
  pings: number;
  replies: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  /** Exits of both VMs per round trip, clock reads left out. */
  exitsPerRoundTrip: number;
}

export const NIC_NAMES: Record<NicKind, string> = { emulated: 'NE2000 (emulated)', synthetic: 'netvsc (synthetic)' };

const delta = (a: VmSample, b: VmSample, name: keyof VmSample['vp']) => b.vp[name] - a.vp[name];
const nonMsrExits = (a: VmSample, b: VmSample) => delta(a, b, 'Exits') - delta(a, b, 'MsrExits');
const percentile = (sorted: number[], q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

function portOf(sw: VirtualSwitch, mac: string): number {
  const p = sw.allPorts().find((x) => x.mac === mac);
  if (!p) throw new Error(`no port with MAC ${mac} on switch ${sw.name}`);
  return p.id;
}

async function tapped<T>(sw: VirtualSwitch, a: BenchVm, b: BenchVm, run: (tap: WireTap) => Promise<T>): Promise<T> {
  const tap = new WireTap(portOf(sw, a.mac), portOf(sw, b.mac));
  sw.onIngress = tap.observe;
  try {
    return await run(tap);
  } finally {
    sw.onIngress = undefined;
  }
}

export async function measureLatency(sw: VirtualSwitch, kind: NicKind, a: BenchVm, b: BenchVm, pings: number): Promise<NetLatencyRow> {
  return tapped(sw, a, b, async (tap) => {
    const [a0, b0] = [await a.sample(), await b.sample()];
    const out = await a.command(`ping ${b.ip} ${pings} q`);
    const [a1, b1] = [await a.sample(), await b.sample()];
    const replies = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    const cycles = tap.cyclesUs().sort((x, y) => x - y);
    return {
      kind,
      nic: NIC_NAMES[kind],
      pings,
      replies,
      p50Us: percentile(cycles, 0.5),
      p99Us: percentile(cycles, 0.99),
      meanUs: cycles.reduce((s, v) => s + v, 0) / Math.max(1, cycles.length),
      exitsPerRoundTrip: (nonMsrExits(a0, a1) + nonMsrExits(b0, b1)) / Math.max(1, replies),
    };
  });
}

/** `flows` > 1: the sender cycles through that many source ports (for a multi-queue receiver's RSS). */
export async function measureStream(sw: VirtualSwitch, kind: NicKind, a: BenchVm, b: BenchVm, frameBytes: number, count: number, flows = 1): Promise<NetVmRow> {
  return tapped(sw, a, b, async (tap) => {
    const before = await b.discarded();
    const [a0, b0] = [await a.sample(), await b.sample()];
    const cpu0 = process.cpuUsage();
    const out = await a.command(`blast ${b.ip} ${count} ${frameBytes}${flows > 1 ? ` ${flows}` : ''}`);
    const cpu = process.cpuUsage(cpu0);
    const [a1, b1] = [await a.sample(), await b.sample()];
    const received = (await b.discarded()) - before;
    const sent = Number(/blast: (\d+) frames/.exec(out)?.[1] ?? NaN);
    if (!out.includes('fence answered') || tap.replyAfterBlastNs === 0n) throw new Error(`${kind} ${frameBytes} B: the fence ping was not answered: ${out}`);
    const seconds = Number(tap.replyAfterBlastNs - tap.firstBlastNs) / 1e9;
    const n = Math.max(1, received);
    const signals = (x0: VmSample, x1: VmSample) => delta(x0, x1, 'SignalEventCalls') + delta(x0, x1, 'EventsSignalled');
    return {
      kind,
      nic: NIC_NAMES[kind],
      frameBytes,
      sent,
      received,
      lost: sent - received,
      seconds,
      framesPerSecond: received / seconds,
      mbitPerSecond: (received * (frameBytes - 14) * 8) / seconds / 1e6,
      perFrame: {
        senderExits: nonMsrExits(a0, a1) / Math.max(1, sent),
        receiverExits: nonMsrExits(b0, b1) / n,
        senderInterrupts: delta(a0, a1, 'InterruptsDelivered') / Math.max(1, sent),
        receiverInterrupts: delta(b0, b1, 'InterruptsDelivered') / n,
        clockReads: (delta(a0, a1, 'MsrExits') + delta(b0, b1, 'MsrExits')) / n,
        signals: (signals(a0, a1) + signals(b0, b1)) / n,
        cpuUs: (a1.cpuUs - a0.cpuUs + b1.cpuUs - b0.cpuUs + cpu.user + cpu.system) / n,
      },
    };
  });
}
