/**
 * The network benchmark in HTML: one section (tables and the notes) that the main job's report
 * embeds, and a self-contained page around it for `bench net` alone. No script, nothing fetched.
 */
import type { NetBenchReport } from '../net.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(head: string[], rows: string[][]): string {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
}

/** The Network section: streams, speedup, latency, the same-run limit, notes. */
export function renderNetSection(r: NetBenchReport, heading = 'h2'): string {
  const streams = table(
    [
      'NIC',
      'frame B',
      'sent',
      'received',
      'lost',
      'frames/s',
      'Mbit/s',
      'exits/frame tx',
      'exits/frame rx',
      'interrupts/frame tx',
      'interrupts/frame rx',
      'signals/frame',
      'clock reads/frame',
      'CPU µs/frame',
    ],
    r.streams.map((s) => [
      s.nic,
      String(s.frameBytes),
      n(s.sent),
      n(s.received),
      n(s.lost),
      n(s.framesPerSecond),
      n(s.mbitPerSecond, 1),
      n(s.perFrame.senderExits, 1),
      n(s.perFrame.receiverExits, 1),
      n(s.perFrame.senderInterrupts, 2),
      n(s.perFrame.receiverInterrupts, 2),
      n(s.perFrame.signals, 2),
      n(s.perFrame.clockReads, 1),
      n(s.perFrame.cpuUs, 1),
    ]),
  );
  const latency = table(
    ['NIC', 'pings', 'replies', 'p50 µs', 'p99 µs', 'mean µs', 'exits/round trip'],
    r.latency.map((l) => [l.nic, n(l.pings), n(l.replies), n(l.p50Us), n(l.p99Us), n(l.meanUs), n(l.exitsPerRoundTrip, 1)]),
  );
  const queues = table(
    [
      'maxChannels',
      'queues',
      'sent',
      'received',
      'lost',
      'frames/s',
      'interrupts/frame rx',
      'signals/frame',
      'CPU µs/frame',
      'packets',
      'frames/packet',
      'packets/interrupt',
      'on primary',
      'on sub-channels',
    ],
    r.multiQueue.map((q) => [
      String(q.maxChannels),
      String(q.queues),
      n(q.sent),
      n(q.received),
      n(q.lost),
      n(q.framesPerSecond),
      n(q.perFrame.receiverInterrupts, 2),
      n(q.perFrame.signals, 2),
      n(q.perFrame.cpuUs, 1),
      n(q.receiver.packets),
      n(q.receiver.framesPerPacket, 1),
      n(q.receiver.packetsPerInterrupt, 2),
      n(q.receiver.onPrimary),
      n(q.receiver.onSubChannels),
    ]),
  );
  const q0 = r.multiQueue[0];
  const limits = table(
    ['path', 'frame B', 'frames/s', 'Mbit/s', 'dropped'],
    r.limits.map((x) => [x.path, String(x.frameBytes), n(x.framesPerSecond), n(x.mbitPerSecond), n(x.dropped)]),
  );
  return `<section><${heading}>Network: NE2000 against netvsc, two VMs on one switch</${heading}>
<p>${r.quick ? 'Quick run' : 'Full run'} of ${n(r.seconds, 1)} s, ${esc(r.startedAt)}. Synthetic over emulated: ${esc(r.speedup.map((s) => `${n(s.syntheticOverEmulated, 1)}× at ${s.frameBytes}-byte frames`).join(', '))}.</p>
<h3>Streams (UDP, sender → receiver)</h3>${streams}
<h3>Ping-pong latency</h3>${latency}
${q0 ? `<h3>netvsc queues: ${q0.vps} VPs per VM, ${q0.frameBytes}-byte frames from ${q0.flows} flows</h3>${queues}` : ''}
<h3>Limit: frames between two processes without a VM (same run)</h3>${limits}
<ul>${r.notes.map((x) => `<li>${esc(x)}</li>`).join('')}</ul></section>`;
}

export function renderNetHtmlPage(r: NetBenchReport): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tsvisor bench net — ${esc(r.startedAt)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}td:first-child,th{text-align:left}th{background:#f3f3f3}</style></head><body>
${renderNetSection(r, 'h1')}
</body></html>
`;
}
