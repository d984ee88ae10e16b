/**
 * `bench net` in its smallest run: real VMMS, two worker processes per NIC kind on one switch,
 * the guests' blast and ping. The figures are timings on a shared machine, so only their shape
 * is asserted; the counts that do not depend on timing (exits of each path, signals only on the
 * synthetic one) are asserted against each other.
 */
import { describe, expect, it } from 'vitest';
import { runNetBench, FRAME_SIZES } from '../../bench/net.ts';
import { formatNetBench } from '../../bench/net/format.ts';
import { renderNetHtmlPage } from '../../bench/net/html.ts';

describe('bench net (tiny)', () => {
  it('measures both NIC kinds at both frame sizes (and netvsc at jumbo frames), latency and the process limit, with plausible figures', {
    timeout: 180_000,
  }, async () => {
    const r = await runNetBench({ scale: 'tiny' });
    expect(r.schema).toBe('tsvisor.bench.net/1');
    expect(r.streams.map((s) => `${s.kind}/${s.frameBytes}`)).toEqual(['emulated/60', 'emulated/1514', 'synthetic/60', 'synthetic/1514', 'synthetic/9014']);
    for (const s of r.streams) {
      expect(s.sent).toBe(s.kind === 'emulated' ? 200 : 2000);
      expect(s.received).toBeGreaterThan(0);
      expect(s.received).toBeLessThanOrEqual(s.sent);
      expect(s.lost).toBe(s.sent - s.received);
      expect(s.seconds).toBeGreaterThan(0);
      expect(s.framesPerSecond).toBeCloseTo(s.received / s.seconds, 6);
      expect(s.mbitPerSecond).toBeCloseTo((s.received * (s.frameBytes - 14) * 8) / s.seconds / 1e6, 6);
      expect(s.perFrame.cpuUs).toBeGreaterThan(0);
      expect(s.perFrame.senderExits).toBeGreaterThan(0);
      if (s.kind === 'emulated') {
        // An NE2000 transmit is ~18 port exits and a receive ~30 (docs/networking.md); no VMBus, so no signals.
        expect(s.perFrame.senderExits).toBeGreaterThanOrEqual(15);
        expect(s.perFrame.receiverExits).toBeGreaterThanOrEqual(15);
        expect(s.perFrame.signals).toBe(0);
      } else {
        expect(s.perFrame.senderExits).toBeLessThan(5);
        expect(s.perFrame.signals).toBeGreaterThan(0);
      }
    }
    for (const size of FRAME_SIZES) {
      const [e, s] = ['emulated', 'synthetic'].map((k) => r.streams.find((x) => x.kind === k && x.frameBytes === size)!);
      expect(s!.perFrame.senderExits).toBeLessThan(e!.perFrame.senderExits / 3);
      expect(r.speedup.find((x) => x.frameBytes === size)!.syntheticOverEmulated).toBeCloseTo(s!.framesPerSecond / e!.framesPerSecond, 6);
    }
    expect(r.latency.map((l) => l.kind)).toEqual(['emulated', 'synthetic']);
    for (const l of r.latency) {
      expect(l.pings).toBe(20);
      expect(l.replies).toBeGreaterThan(0);
      expect(l.p50Us).toBeGreaterThan(0);
      expect(l.p99Us).toBeGreaterThanOrEqual(l.p50Us);
      expect(l.exitsPerRoundTrip).toBeGreaterThan(0);
    }
    // One queue against one per VP: the definition's maxChannels decides what the guest is granted.
    expect(r.multiQueue.map((q) => [q.maxChannels, q.queues, q.vps])).toEqual([
      [1, 1, 2],
      [2, 2, 2],
    ]);
    for (const q of r.multiQueue) {
      expect(q.sent).toBe(2000);
      expect(q.received).toBeGreaterThan(0);
      expect(q.received).toBeLessThanOrEqual(q.sent);
      expect(q.receiver.packets).toBeGreaterThan(0);
      expect(q.receiver.packetsPerInterrupt).toBeGreaterThan(0);
      expect(q.receiver.onPrimary + q.receiver.onSubChannels).toBeGreaterThanOrEqual(q.received);
    }
    expect(r.multiQueue[0]!.receiver.onSubChannels).toBe(0);
    // 16 flows hashed over two channels: both carry some.
    expect(r.multiQueue[1]!.receiver.onSubChannels).toBeGreaterThan(0);
    expect(r.multiQueue[1]!.receiver.onPrimary).toBeGreaterThan(0);
    expect(r.limits.map((x) => `${x.path}/${x.frameBytes}`)).toEqual([
      'process → process/64',
      'via switch/64',
      'process → process/1514',
      'via switch/1514',
      'process → process/9014',
      'via switch/9014',
    ]);
    for (const x of r.limits) expect(x.framesPerSecond).toBeGreaterThan(0);
    expect(formatNetBench(r)).toContain('netvsc (synthetic)');
    expect(formatNetBench(r)).toMatch(/2 queues over 1: \d+\.\d\d× the frames\/s/);
    const html = renderNetHtmlPage(r);
    expect(html).toContain('NE2000 (emulated)');
    expect(html).toContain('netvsc queues: 2 VPs per VM');
    expect(html).not.toMatch(/<script|\s(src|href)=/);
  });
});
