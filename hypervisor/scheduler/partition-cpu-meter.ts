/**
 * CPU time per VP of one partition, as the kernel counts it for the VP threads (their thread ids
 * are in the budget block), totalled across the threads a VP had: a VP captured and continued
 * (save/restore, a failed save undone) runs on a new thread, and a thread that ended keeps its
 * last reading. For the root partition's main thread: metering and the scheduler's demand.
 */
import type { CpuBudgetBlock } from './cpu-budget-block.ts';
import { threadCpuNs } from './thread-cpu-clock.ts';

export class PartitionCpuMeter {
  private readonly tids: number[];
  private readonly lastNs: number[];
  private readonly endedNs: number[];

  constructor(private readonly block: CpuBudgetBlock) {
    this.tids = new Array(block.vpCount).fill(0);
    this.lastNs = new Array(block.vpCount).fill(0);
    this.endedNs = new Array(block.vpCount).fill(0);
  }

  /** CPU time each VP has used since the partition was created, µs. */
  sampleUs(): number[] {
    const out: number[] = [];
    for (let vp = 0; vp < this.block.vpCount; vp++) {
      const tid = this.block.tid(vp);
      if (tid !== this.tids[vp]) {
        this.endedNs[vp] += this.lastNs[vp];
        this.lastNs[vp] = 0;
        this.tids[vp] = tid;
      }
      const ns = threadCpuNs(tid);
      if (ns !== null) this.lastNs[vp] = ns;
      out.push((this.endedNs[vp] + this.lastNs[vp]) / 1000);
    }
    return out;
  }
}
