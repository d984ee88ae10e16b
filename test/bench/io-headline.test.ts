/**
 * The report's headline is computed from the run: the speedup range per emulated mode is the range
 * of that mode's rows, a mode that won somewhere is named with its figures, and the HTML opens
 * with it and the targets, and says which tsvisor made it. On the committed reference run and on
 * variants of it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { IoBenchReport } from '../../bench/io.ts';
import { headline } from '../../bench/io/headline.ts';
import { renderHtml } from '../../bench/io/html.ts';
import { buildIdentity } from '../../bench/io/build-identity.ts';

const reference = (): IoBenchReport => JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'bench', 'results', 'reference.json'), 'utf8'));

describe('bench io headline', () => {
  it("states each emulated mode's speedup range from its own rows, and names where it won", () => {
    const report = reference();
    const h = headline(report)!;
    for (const s of h.speedups) {
      const mine = report.rows.filter((r) => r.path === s.path && r.syntheticSpeedup !== null).map((r) => r.syntheticSpeedup!);
      expect([s.min, s.max]).toEqual([Math.min(...mine), Math.max(...mine)]);
      expect(s.lostOn).toEqual(report.rows.filter((r) => r.path === s.path && r.syntheticSpeedup! < 1).map((r) => r.workloadLabel));
    }
    expect(h.speedups.map((s) => s.path)).toEqual(['pio-word', 'pio-string', 'pio-multiple', 'dma']);
    const lost = h.speedups.some((s) => s.lostOn.length > 0);
    expect(h.sentences[1].includes('Where an emulated mode won')).toBe(lost);
  });

  it('a run where synthetic won everywhere says nothing about losses; a run with no emulated row has no headline', () => {
    const report = reference();
    for (const r of report.rows) if (r.syntheticSpeedup !== null) r.syntheticSpeedup = Math.max(1.5, r.syntheticSpeedup);
    const h = headline(report)!;
    expect(h.sentences[1]).not.toContain('Where an emulated mode won');
    expect(h.sentences[0]).toMatch(/^Synthetic SCSI over VMBus \(storvsc\) was [\d.]+–[\d.]+× as fast as ATA PIO per word/);
    const none = reference();
    none.rows = none.rows.filter((r) => r.kind === 'synthetic');
    expect(headline(none)).toBeNull();
    expect(renderHtml(none)).toContain('No emulated row was measured');
  });

  it('the HTML opens with the headline and the targets, and names the tsvisor that made it', () => {
    const report = { ...reference(), build: buildIdentity() };
    const html = renderHtml(report);
    const at = (needle: string) => html.indexOf(needle);
    expect(at('Synthetic SCSI over VMBus (storvsc) was')).toBeGreaterThan(0);
    expect(at('Targets: ')).toBeGreaterThan(at('Synthetic SCSI over VMBus'));
    expect(at('Targets: ')).toBeLessThan(at('<h2>Throughput'));
    expect(html).toContain(`tsvisor ${report.build.version}`);
    expect(report.build.commit).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    expect(html).toContain(`commit ${report.build.commit}`);
    expect(html).toContain("Where a synthetic I/O's time goes");
  });
});
