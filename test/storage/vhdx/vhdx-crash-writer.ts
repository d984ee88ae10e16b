/**
 * Child process of vhdx-crash.test.ts: makes the writes of vhdx-crash-plan.ts into a VHDX,
 * flushing each and reporting it on stdout ("flushed <i>") only once the flush returned.
 * TSVISOR_VHDX_FAULT_POINT kills it at a step of a metadata update.
 *
 * argv: <image>
 */
import { writeSync } from 'node:fs';
import { openVhdx } from '../../../root-partition/storage/vhdx/vhdx-open.ts';
import { CRASH_WRITES, crashWrite } from './vhdx-crash-plan.ts';

const disk = openVhdx(process.argv[2]);
for (let i = 0; i < CRASH_WRITES; i++) {
  const { lba, data } = crashWrite(i);
  disk.write(lba, data);
  disk.flush();
  writeSync(1, `flushed ${i}\n`);
}
disk.close();
