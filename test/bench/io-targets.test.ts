// The I/O bench's protocol target: exact, and not met when nothing was measured.
import { describe, expect, it } from 'vitest';
import { evaluateTargets, type IoRow } from '../../bench/io/report.ts';
import type { ExitLimit } from '../../bench/io/limits.ts';

const exitLimit = { adaptiveUsPerExit: 1, blockingUsPerExit: 5 } as ExitLimit;

function ataRow(exits: number, expected: number, interrupts = 1, interruptsExpected = 1): IoRow {
  return {
    kind: 'emulated',
    path: 'dma',
    workload: 'rand-read-4k',
    perIo: { exits, exitsExpected: expected, interrupts, interruptsExpected },
  } as unknown as IoRow;
}

const protocolTarget = (rows: IoRow[]) => evaluateTargets(rows, [], exitLimit, true).find((t) => t.name.startsWith('emulated exits'))!;

describe('bench io: the exits-per-I/O target', () => {
  it('is met only when every ATA row equals the protocol count exactly', () => {
    expect(protocolTarget([ataRow(17, 17), ataRow(787, 787)])).toMatchObject({ met: true, measured: '2/2 rows equal' });
    // 0.3% over used to pass inside the old 0.5% slack.
    expect(protocolTarget([ataRow(17, 17), ataRow(789.3, 787)])).toMatchObject({ met: false });
    expect(protocolTarget([ataRow(17.01, 17)]).met).toBe(false);
    expect(protocolTarget([ataRow(17, 17, 2, 1)]).met).toBe(false);
  });

  it('is not met when the run has no ATA rows', () => {
    const storvsc = { kind: 'synthetic', path: 'storvsc', workload: 'rand-read-4k', perIo: { exits: 3, exitsExpected: null } } as unknown as IoRow;
    expect(protocolTarget([storvsc])).toMatchObject({ met: false, measured: 'no ATA rows measured' });
    expect(protocolTarget([])).toMatchObject({ met: false });
  });
});
