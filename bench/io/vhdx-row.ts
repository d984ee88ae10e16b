/**
 * The VHDX rows: the storvsc phases run again, in the same bench run, on a second VM whose SCSI
 * disk is a dynamic VHDX holding the same content as the raw file. The content is random, so
 * every block is allocated before the phases start: the rows show what the format costs in
 * steady state (a BAT lookup per block and the split at block boundaries), not the growth of a
 * fresh disk (an allocating write also flushes and logs its BAT update; docs/storage.md).
 */
import * as path from 'node:path';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { createVhdx } from '../../root-partition/storage/vhdx/vhdx-create.ts';
import { openVhdx } from '../../root-partition/storage/vhdx/vhdx-open.ts';
import type { BackendLimit, ExitLimit } from './limits.ts';
import type { Phase } from './plan.ts';
import { buildRows, checkPhase, type IoRow } from './report.ts';
import { runVm, type VmRunOptions } from './vm-run.ts';

export const VHDX_PATH_ID = 'storvsc-vhdx';
/** qemu-img's default block size for disks up to 1 GiB. */
const BLOCK_SIZE = 8 * 1024 * 1024;

export interface VhdxRowsResult {
  rows: IoRow[];
  warmupsOk: number;
  warmups: number;
}

export async function measureVhdxRows(
  dir: string,
  content: Uint8Array,
  phases: Phase[],
  ideFile: string,
  backend: BackendLimit[],
  exit: ExitLimit,
  vm: Omit<VmRunOptions, 'ideFile' | 'scsiFile' | 'phases'>,
): Promise<VhdxRowsResult> {
  const file = path.join(dir, 'scsi.vhdx');
  createVhdx(file, { type: 'dynamic', sizeBytes: content.length, blockSizeBytes: BLOCK_SIZE });
  const d = openVhdx(file);
  d.write(0, content);
  d.close();
  const synthetic = phases.filter((p) => p.path.kind === 'synthetic').map((p, index) => ({ ...p, index }));
  const run = await runVm({ ...vm, ideFile, scsiFile: file, phases: synthetic });
  const disk = openDisk(file, { readOnly: true });
  const final = new Uint8Array(content.length);
  disk.read(0, final);
  disk.close();
  const rows = buildRows(run, content, final, final, backend, exit).map((r) => ({ ...r, path: VHDX_PATH_ID, pathLabel: `${r.pathLabel}, dynamic VHDX` }));
  const warmups = run.phases.filter((m) => m.phase.warmup);
  return { rows, warmups: warmups.length, warmupsOk: warmups.filter((m) => checkPhase(m, content, content.length / 512).ok).length };
}
