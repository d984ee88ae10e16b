/** The network benchmark as terminal text: streams, speedup, latency, the same-run limit, notes. */
import type { NetBenchReport } from '../net.ts';

const num = (v: number, w: number, digits = 0) => v.toFixed(digits).padStart(w);

export function formatNetBench(r: NetBenchReport): string {
  const lines = [
    `bench net: two VMs on a private switch, each in its own worker; ${r.machine.cores} × ${r.machine.cpuModel}, Node ${r.machine.node}, load ${r.machine.loadAverageStart.map((l) => l.toFixed(2)).join('/')}${r.quick ? ` (${r.scale})` : ''}; ${r.seconds.toFixed(1)} s`,
    '',
    'NIC                 frame B      sent  received    lost   frames/s   Mbit/s  exits tx/rx  irq tx/rx  signals  clock  CPU µs  (per frame)',
  ];
  for (const s of r.streams) {
    const p = s.perFrame;
    lines.push(
      `${s.nic.padEnd(19)} ${num(s.frameBytes, 7)} ${num(s.sent, 9)} ${num(s.received, 9)} ${num(s.lost, 7)} ${num(s.framesPerSecond, 10)} ${num(s.mbitPerSecond, 8, 1)} ${num(p.senderExits, 6, 1)}/${num(p.receiverExits, 5, 1)} ${num(p.senderInterrupts, 5, 2)}/${num(p.receiverInterrupts, 4, 2)} ${num(p.signals, 8, 2)} ${num(p.clockReads, 6, 1)} ${num(p.cpuUs, 7, 1)}`,
    );
  }
  if (r.multiQueue.length > 0) {
    lines.push(
      '',
      `netvsc queues: ${r.multiQueue[0]!.vps} VPs per VM, ${r.multiQueue[0]!.frameBytes}-byte frames from ${r.multiQueue[0]!.flows} flows`,
      'maxChannels queues      sent  received    lost   frames/s  irq rx  signals  CPU µs  packets  frames/packet  packets/irq  on primary  on sub-channels',
    );
    for (const q of r.multiQueue) {
      const x = q.receiver;
      lines.push(
        `${num(q.maxChannels, 11)} ${num(q.queues, 6)} ${num(q.sent, 9)} ${num(q.received, 9)} ${num(q.lost, 7)} ${num(q.framesPerSecond, 10)} ${num(q.perFrame.receiverInterrupts, 7, 2)} ${num(q.perFrame.signals, 8, 2)} ${num(q.perFrame.cpuUs, 7, 1)} ${num(x.packets, 8)} ${num(x.framesPerPacket, 14, 1)} ${num(x.packetsPerInterrupt, 12, 2)} ${num(x.onPrimary, 11)} ${num(x.onSubChannels, 16)}`,
      );
    }
    const [one, many] = [r.multiQueue[0]!, r.multiQueue[r.multiQueue.length - 1]!];
    lines.push(`${many.queues} queues over 1: ${(many.framesPerSecond / one.framesPerSecond).toFixed(2)}× the frames/s`);
  }
  lines.push('', 'synthetic over emulated: ' + r.speedup.map((s) => `${s.syntheticOverEmulated.toFixed(1)}× at ${s.frameBytes} B`).join(', '));
  lines.push('', 'NIC                  pings  replies   p50 µs   p99 µs  mean µs  exits/round trip');
  for (const l of r.latency)
    lines.push(
      `${l.nic.padEnd(19)} ${num(l.pings, 6)} ${num(l.replies, 8)} ${num(l.p50Us, 8)} ${num(l.p99Us, 8)} ${num(l.meanUs, 8)} ${num(l.exitsPerRoundTrip, 17, 1)}`,
    );
  lines.push('', 'limit: frames between two processes without a VM (same run)', 'path               frame B   frames/s   Mbit/s   dropped');
  for (const x of r.limits)
    lines.push(`${x.path.padEnd(18)} ${num(x.frameBytes, 7)} ${num(x.framesPerSecond, 10)} ${num(x.mbitPerSecond, 8)} ${num(x.dropped, 9)}`);
  lines.push('', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}
