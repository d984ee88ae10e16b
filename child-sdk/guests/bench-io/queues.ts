// Two storvsc queues driven from two VPs: the primary channel from VP 0 and sub-channel 1 from
// VP 1, whose interrupts the host sends to VP 1 (OPENCHANNEL target_vp), as Linux storvsc spreads
// its sub-channels over the CPUs. A phase on this path splits its I/Os between the queues: VP 0
// takes I/O 0, 2, 4… of the phase's LBA sequence and VP 1 I/O 1, 3, 5…, each at half the queue
// depth, so the phase moves the same blocks as on one queue and its checksum (a sum) is the same.
import { cli, halt, sti, outl } from "../../platform/hv";
import { synicEnable, sintRoute } from "../../hv/synic";
import { startVirtualProcessor } from "../../hv/hypercall";
import { pageAlloc } from "../../kernel/pages";
import { StorvscController } from "../../drivers/storvsc";
import { StorvscDisk } from "../../drivers/storvsc-disk";
import { BLOCK_OK } from "../../drivers/block-device";
import { VMBUS_MESSAGE_SINT } from "../../vmbus/channel-protocol";
import { Phase, POST_PORT, POST_PHASE_BEGIN, POST_PHASE_END, R_CHECKSUM, R_DONE, R_ERRORS, R_LAT_INDEX, R_MAX_IN_FLIGHT, R_T0, R_T1, RECORD_BYTES, now, runQueued } from "./workload";

// Shared with VP 1 (module globals are per VP): [0] work sequence, [4] done sequence, [8] quit,
// [12] online, [16] attach status, [20] VP 1's disk, [24] VP 1's phase, [28] its record,
// [32] its latencies, [36] its buffers, [40] its scratch page, [44] the SINT2 vector.
const Q: usize = memory.data(64, 16);
const Q_WORK: usize = 0, Q_DONE: usize = 4, Q_QUIT: usize = 8, Q_ONLINE: usize = 12, Q_ATTACH: usize = 16;
const Q_DISK: usize = 20, Q_PHASE: usize = 24, Q_REC: usize = 28, Q_LAT: usize = 32, Q_BUFS: usize = 36, Q_SCRATCH: usize = 40, Q_VECTOR: usize = 44;

/** VP 1: its SynIC (SINT2 to the VMBus vector), the sub-channel's disk attached from here, then phases as VP 0 hands them over. */
function queueVp(vp: u32): void {
  synicEnable(<i32>vp);
  sintRoute(VMBUS_MESSAGE_SINT, load<u32>(Q + Q_VECTOR));
  sti();
  const disk = changetype<StorvscDisk>(load<usize>(Q + Q_DISK));
  atomic.store<i32>(Q + Q_ATTACH, disk.attach());
  atomic.store<u32>(Q + Q_ONLINE, 1);
  let seen: u32 = 0;
  for (;;) {
    const work = atomic.load<u32>(Q + Q_WORK);
    if (work == seen) {
      if (atomic.load<u32>(Q + Q_QUIT) != 0) break;
      continue;
    }
    seen = work;
    runQueued(changetype<Phase>(load<usize>(Q + Q_PHASE)), load<usize>(Q + Q_REC), load<usize>(Q + Q_LAT), load<usize>(Q + Q_BUFS), load<usize>(Q + Q_SCRATCH));
    atomic.store<u32>(Q + Q_DONE, seen);
  }
  cli();
  halt();
}

/**
 * Asks for sub-channel 1, opens it for VP 1 and starts VP 1 on it. Returns 0, or what failed:
 * 1 CREATE_SUB_CHANNELS, 2 the open, 3 pages, 4 starting VP 1, or 100 + the attach's BLOCK_* (negated).
 */
export function queuesStart(primary: StorvscController, vector: u32, secondBuffers: usize): u32 {
  if (!primary.createSubChannels(1)) return 1;
  const sub = new StorvscController();
  if (!sub.openSubChannel(primary, 1, 1)) return 2;
  const rec = pageAlloc(), scratch = pageAlloc();
  if (rec == 0 || scratch == 0) return 3;
  store<usize>(Q + Q_DISK, changetype<usize>(new StorvscDisk(sub, 0, 0, 0, 0)));
  store<usize>(Q + Q_REC, rec);
  store<usize>(Q + Q_SCRATCH, scratch);
  store<usize>(Q + Q_BUFS, secondBuffers);
  store<u32>(Q + Q_VECTOR, vector);
  if (startVirtualProcessor(1, queueVp) != 0) return 4;
  while (atomic.load<u32>(Q + Q_ONLINE) == 0) {}
  const attached = atomic.load<i32>(Q + Q_ATTACH);
  return attached == BLOCK_OK ? 0 : <u32>(100 - attached);
}

/** VP 1 halts (after the last phase). */
export function queuesStop(): void {
  atomic.store<u32>(Q + Q_QUIT, 1);
}

/** One phase over both queues, between its POST markers; the record holds both halves. */
export function runPhaseOnQueues(index: u32, ph: Phase, rec: usize, lat: usize, latIndex: u32, bufs: usize, scratch: usize): void {
  store<u64>(rec + R_LAT_INDEX, latIndex);
  const other = new Phase(changetype<StorvscDisk>(load<usize>(Q + Q_DISK)));
  other.write = ph.write;
  other.random = ph.random;
  other.sectors = ph.sectors;
  other.count = ph.count >> 1;
  other.depth = ph.depth - (ph.depth >> 1);
  other.first = 1;
  other.stride = 2;
  const own = ph.count - other.count;
  ph.count = own;
  ph.depth = ph.depth >> 1;
  ph.stride = 2;
  const side = load<usize>(Q + Q_REC);
  memory.fill(side, 0, RECORD_BYTES);
  store<usize>(Q + Q_PHASE, changetype<usize>(other));
  store<usize>(Q + Q_LAT, lat + (<usize>(latIndex + own) << 2));
  outl(POST_PORT, POST_PHASE_BEGIN + index);
  store<u64>(rec + R_T0, now());
  const work = atomic.load<u32>(Q + Q_WORK) + 1;
  atomic.store<u32>(Q + Q_WORK, work);
  runQueued(ph, rec, lat + (<usize>latIndex << 2), bufs, scratch);
  while (atomic.load<u32>(Q + Q_DONE) != work) {}
  store<u64>(rec + R_T1, now());
  outl(POST_PORT, POST_PHASE_END + index);
  store<u64>(rec + R_DONE, load<u64>(rec + R_DONE) + load<u64>(side + R_DONE));
  store<u64>(rec + R_ERRORS, load<u64>(rec + R_ERRORS) + load<u64>(side + R_ERRORS));
  store<u64>(rec + R_CHECKSUM, <u64>(<u32>load<u64>(rec + R_CHECKSUM) + <u32>load<u64>(side + R_CHECKSUM)));
  store<u64>(rec + R_MAX_IN_FLIGHT, load<u64>(rec + R_MAX_IN_FLIGHT) + load<u64>(side + R_MAX_IN_FLIGHT));
  ph.count = own + other.count;
}
