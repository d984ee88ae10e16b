/**
 * The multi-queue rows of `bench net`: the synthetic NIC with one channel against one channel per
 * VP, side by side in one run. Both pairs have the same VPs; only the adapters' `maxChannels`
 * differs (1: SUBCHANNEL is refused and the guest stays on its primary; N: the guest opens N − 1
 * sub-channels and sets RSS). The sender cycles through several UDP source ports so that the
 * receiver's RSS has flows to spread; the counts that explain the result come from the receiving
 * guest's netvsc (transfer-page packets, frames per channel) and from its VPs (interrupts,
 * signals).
 */
import type { Vmms } from '../../root-partition/vmms/vmms.ts';
import type { VirtualSwitch } from '../../root-partition/vswitch/virtual-switch.ts';
import { startPair } from './vm-pair.ts';
import { measureStream, type PerFrame } from './vm-rows.ts';

export interface NetQueueRow {
  /** The adapters' maxChannels in the definition. */
  maxChannels: number;
  /** Channels the receiving guest runs (its netvsc `queues`): what the host granted it. */
  queues: number;
  vps: number;
  frameBytes: number;
  flows: number;
  sent: number;
  received: number;
  lost: number;
  seconds: number;
  framesPerSecond: number;
  perFrame: PerFrame;
  receiver: {
    /** Transfer-page packets the receiving guest took, and frames (of any kind) per packet. */
    packets: number;
    framesPerPacket: number;
    /** Transfer-page packets per interrupt delivered to the receiving VM. */
    packetsPerInterrupt: number;
    /** Frames that came on the primary channel and on the sub-channels. */
    onPrimary: number;
    onSubChannels: number;
  };
}

/** Frame size and flows of the multi-queue rows: minimum frames, where per-packet costs dominate. */
export const MULTI_QUEUE_FRAME = 60;
export const MULTI_QUEUE_FLOWS = 16;
/** VPs of each multi-queue VM, and so the channels of the multi-queue row (one per VP, as Linux asks). */
export const MULTI_QUEUE_VPS = 2;

export async function measureMultiQueue(vmms: Vmms, sw: VirtualSwitch, switchName: string, vps: number, count: number): Promise<NetQueueRow[]> {
  const rows: NetQueueRow[] = [];
  const channels = [1, vps];
  // Both pairs boot at once (the boots overlap; each is measured alone afterwards, the other idle at its prompt).
  const started = await Promise.allSettled(channels.map((maxChannels, i) => startPair(vmms, 'synthetic', switchName, 3 + i, { vpCount: vps, maxChannels })));
  const pairs = started.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
  try {
    const failed = started.find((p) => p.status === 'rejected');
    if (failed) throw failed.reason;
    for (const [i, [a, b]] of pairs.entries()) {
      const maxChannels = channels[i]!;
      const q0 = await b.netvscCounters();
      const v0 = await b.sample();
      const s = await measureStream(sw, 'synthetic', a, b, MULTI_QUEUE_FRAME, count, MULTI_QUEUE_FLOWS);
      const v1 = await b.sample();
      const q1 = await b.netvscCounters();
      const d = (k: string) => (q1[k] ?? 0) - (q0[k] ?? 0);
      const packets = d('rx_packets');
      const frames = d('received');
      rows.push({
        maxChannels,
        queues: q1.queues ?? 0,
        vps,
        frameBytes: s.frameBytes,
        flows: MULTI_QUEUE_FLOWS,
        sent: s.sent,
        received: s.received,
        lost: s.lost,
        seconds: s.seconds,
        framesPerSecond: s.framesPerSecond,
        perFrame: s.perFrame,
        receiver: {
          packets,
          framesPerPacket: frames / Math.max(1, packets),
          packetsPerInterrupt: packets / Math.max(1, v1.vp.InterruptsDelivered - v0.vp.InterruptsDelivered),
          onPrimary: frames - d('rx_sub'),
          onSubChannels: d('rx_sub'),
        },
      });
    }
  } finally {
    for (const vm of pairs.flat()) await vmms.turnOff(vm.name);
  }
  return rows;
}
