// The main job's smallest configuration, so `tsvisor bench io` cannot rot: the report has every
// section, every row carries its counters, the data checks pass and the HTML renders. No figure
// is asserted against a target: the machine's load decides those.
import { describe, expect, it } from 'vitest';
import { runIoBench, NETWORK_NOT_MEASURED } from '../../bench/io.ts';
import { renderHtml } from '../../bench/io/html.ts';
import { formatReport } from '../../bench/io/format.ts';
import { buildPhases, guestCommandLine, PATHS, WORKLOADS } from '../../bench/io/plan.ts';
import { notePointers } from '../helpers/outside-documents.ts';

describe('bench io plan', () => {
  it('reads every round before any write, so every read sees the disks as filled, and fits the command line', () => {
    for (const quick of [true, false]) {
      const phases = buildPhases(quick, quick ? 1 : 3);
      const firstWrite = phases.findIndex((p) => p.workload.write);
      expect(phases.slice(firstWrite).every((p) => p.workload.write)).toBe(true);
      expect(phases.filter((p) => p.warmup).every((p) => !p.workload.write && p.index < PATHS.length)).toBe(true);
      expect(guestCommandLine(phases).length).toBeLessThanOrEqual(3840);
    }
  });
});

describe('bench io, smallest configuration', () => {
  it('runs every path and workload and reports them with their counters, checksums and limits', async () => {
    const report = await runIoBench({ tiny: true, progress: false });
    expect(report.schema).toBe('tsvisor.bench.io/1');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.loadAverageEnd).toHaveLength(3);
    // Data: every phase's checksum equals the host file's, and both disks hold exactly what was written.
    expect(report.integrity.ok, JSON.stringify(report.integrity)).toBe(true);
    // One warm-up per path, and the storvsc one again on the dynamic VHDX.
    expect(report.integrity.warmups).toBe(PATHS.length + 1);
    for (const d of report.integrity.disks) expect(d.mismatched).toBe(0);
    // Every workload has a storvsc row, and every ATA mode but per-word PIO has every QD1 workload.
    for (const w of WORKLOADS) {
      expect(report.rows.some((r) => r.workload === w.id && r.path === 'storvsc')).toBe(true);
      expect(report.rows.some((r) => r.workload === w.id && r.path === 'storvsc-vhdx' && r.checksum.ok)).toBe(true);
    }
    for (const r of report.rows) {
      expect(r.errors).toBe(0);
      expect(r.ios).toBeGreaterThan(0);
      expect(r.mbPerS).toBeGreaterThan(0);
      expect(r.latencyUs.p99).toBeGreaterThanOrEqual(r.latencyUs.p50);
      expect(r.perIo.hostCpuUs).toBeGreaterThan(0);
      // Emulated exits are a protocol count, not a timing: they must be exact.
      if (r.kind === 'emulated') {
        expect(r.perIo.exits).toBe(r.perIo.exitsExpected);
        expect(r.perIo.interrupts).toBe(r.perIo.interruptsExpected);
        expect(r.syntheticSpeedup).toBeGreaterThan(0);
      } else {
        expect(r.perIo.signalsToHost).toBeLessThanOrEqual(1);
        // The stage split sees the backend's time through the VM's drive (raw images count it).
        if (r.path === 'storvsc') expect(r.perIo.storvspBackendUs).toBeGreaterThan(0);
      }
    }
    expect(report.limits.copy.map((c) => c.bytes)).toEqual([4096, 65536, 1 << 20]);
    expect(report.limits.backend).toHaveLength(WORKLOADS.length);
    expect(report.limits.exit.adaptiveUsPerExit).toBeGreaterThan(0);
    expect(report.limits.exit.blockingUsPerExit).toBeGreaterThan(0);
    // The VM's memory was backed before its VP started, and the first-touch cost is measured apart.
    expect(report.limits.memory?.prefault).toMatchObject({ bytes: report.config.vmMemoryBytes, cancelled: false });
    expect(report.limits.memory?.firstTouch.pages).toBe(1024);
    expect(report.limits.memory?.firstTouch.coldUsPerPage).toBeGreaterThan(0);
    expect(report.targets.length).toBeGreaterThanOrEqual(5);
    expect(report.network).toEqual({ status: 'not measured', note: NETWORK_NOT_MEASURED });
    // Two storvsc queues from two VPs (one VM: the queue-thread row): VP 1 drives sub-channel 1, its
    // interrupts land on VP 1, a queue thread of its own serves it, and the data is the one-queue phase's.
    const q = report.queues!.rows;
    expect(q.map((r) => r.id)).toEqual(['two-queues-queue-thread']);
    expect(q[0]!.ok).toBe(true);
    expect(q[0]!.queueThread).toBe(true);
    expect(q[0]!.perIo.interruptsVp1).toBeGreaterThan(0);
    expect(q[0]!.perIo.queueThreadRequests).toBeGreaterThan(0);
    expect(q[0]!.perIo.queueThreadRequests).toBeLessThanOrEqual(0.5);
    expect(formatReport(report)).toContain('Several queues');
    // The outputs render.
    expect(formatReport(report)).toContain('storvsc VHDX');
    const html = renderHtml(report);
    expect(html).toContain('<svg');
    expect(html).toContain('Several queues: 4 KiB random read QD32');
    expect(html).toContain('<td>two queues (VP 0, VP 1), sub-channel on a queue thread</td>');
    // It says which tsvisor made it and opens with its answer; nothing points where a reader cannot follow.
    expect(report.build?.commit).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    expect(html).toContain(`commit ${report.build!.commit}`);
    expect(html).toContain('as fast as ATA PIO');
    expect(notePointers(html)).toEqual([]);
    expect(html).not.toMatch(/<script|\s(src|href)=/); // self-contained: nothing to fetch
  }, 120_000);
});
