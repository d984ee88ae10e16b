/**
 * The body of a storvsp queue thread: one sub-channel's rings served on a thread of their own.
 * It sleeps (after an adaptive spin) on the channel's own doorbell, which the guest's
 * HvCallSignalEvent on the channel's connection rings (PortTable.routeEvents), drains the ring
 * with a StorVsp of its own over the same raw images (their descriptors borrowed), runs each
 * request synchronously here, writes the completions and signals the channel's target VP (event
 * flag + SINT: SynIC delivery is atomic, hypervisor/synic/synic-delivery.ts). Parked on its
 * owner's command, it finishes the pass it is in and touches the rings no more.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HvStatus } from '../../../abi/hv-status.ts';
import { SpinBudget, WaitCounters, waitForChange } from '../../../hypervisor/adaptive-wait.ts';
import { PartitionHandle } from '../../../hypervisor/partition-handle.ts';
import { offloadedRings } from '../../../vmbus/host/channel-offload.ts';
import { VmbusPorts } from '../../../vmbus/host/vmbus-host.ts';
import { VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { DiskIoError } from '../../storage/disk-io-error.ts';
import { RawDisk } from '../../storage/raw-disk.ts';
import { ScsiDisk } from '../../storage/scsi/scsi-disk.ts';
import { StorVsp } from './storvsp-vsp.ts';
import {
  Q_COMMAND,
  Q_STATE,
  QUEUE_COUNTERS,
  QueueCommand,
  QueueState,
  type QueueThreadBind,
  type QueueThreadData,
  type QueueThreadMessage,
} from './storvsp-queue-thread-protocol.ts';
import { FailureReportingDisk } from './storvsp-queue-thread-disk.ts';

const data = workerData as QueueThreadData;
const post = (m: QueueThreadMessage) => parentPort!.postMessage(m);
const control = new Int32Array(data.control);
const counters = new Float64Array(data.counters);
const partition = PartitionHandle.attach(data.share);
const bell = partition.ctl.i32;
// Loaded ahead of its sub-channel (when the primary opens): ready by the time the guest opens one.
const bound = new Promise<QueueThreadBind | null>((resolve) => {
  parentPort!.once('message', (m: QueueThreadBind) => resolve(m));
  // Stop before any sub-channel: the owner rings the control word; nothing else would wake this thread.
  const w = Atomics.waitAsync(control, Q_COMMAND, QueueCommand.Park);
  if (w.async) void w.value.then(() => resolve(null));
});
Atomics.store(control, Q_STATE, QueueState.Loaded);
Atomics.notify(control, Q_STATE);
const bind = await bound;
if (bind === null) {
  Atomics.store(control, Q_STATE, QueueState.Stopped);
  process.exit(0);
}
const g = bind.geometry;

// At most LOG_BURST lines a second leave this thread (a guest can cause them); the rest are counted.
const LOG_BURST = 20;
let logWindow = 0;
let logged = 0;
let suppressed = 0;
const log = (message: string) => {
  const now = Math.floor(performance.now() / 1000);
  if (now !== logWindow) {
    logWindow = now;
    logged = 0;
  }
  if (logged >= LOG_BURST) {
    suppressed++;
    return;
  }
  logged++;
  post({ kind: 'log', message, suppressed });
};

/** Set by a disk failure or a broken ring: the pass ends and the thread parks for good (the owner takes the channel back). */
let failed = false;
const luns = bind.luns.map((l, index) => ({
  pathId: l.pathId,
  targetId: l.targetId,
  lun: l.lun,
  disk: new ScsiDisk(
    new FailureReportingDisk(RawDisk.borrow(l.image), (e: DiskIoError) => {
      failed = true;
      // The cause alone: the owner rebuilds the error with its own path prefix.
      const detail = e.message.slice(e.message.indexOf('): ') + 3);
      post({ kind: 'disk-failure', lun: index, path: e.path, operation: e.operation, errno: e.errno, lba: e.lba, detail });
    }),
    { diskId: l.diskId },
  ),
}));
const vsp = new StorVsp({
  instanceId: '00000000-0000-0000-0000-000000000000', // never offered from here
  luns,
  versions: data.versions,
  maxTransferBytes: data.maxTransferBytes,
  pollSpinMicros: 0, // this thread's own wait spins
  queueMinBytes: Infinity, // the thread is the queue: its requests run here, synchronously
  log,
});
const channel = new VspChannel(
  partition.mem,
  vsp,
  {
    relid: g.relid,
    subChannelIndex: g.subChannelIndex,
    primaryRelid: g.primaryRelid,
    connectionId: g.connectionId,
    targetVp: g.targetVp,
    openId: 0,
    gpadlHandle: 0,
    ringPages: [],
    downstreamPageOffset: 0,
    userData: new Uint8Array(0),
  },
  offloadedRings(partition.mem, g),
  {
    // The channel's target VP, as the VMBus host signals it: its SINT2 event port, flag = relid.
    signalGuest: () => partition.signalEvent(VmbusPorts.hostEventPort(g.targetVp), g.relid) === HvStatus.Success,
    channelFailed: (_ch, reason) => {
      failed = true;
      post({ kind: 'channel-failed', reason });
    },
  },
);
vsp.serveOffloaded(channel, bind.version);

const waits = new WaitCounters();
const budget = new SpinBudget({ spinIterations: data.spinIterations, maxSpinIterations: data.maxSpinIterations });
let wakes = 0;
let passes = 0;
const publish = () => {
  const s = vsp.stats as unknown as Record<string, number>;
  const own: Record<string, number> = {
    signalsToGuest: channel.stats.signalsToGuest,
    wakes,
    spinHits: waits.spinHits,
    sleeps: waits.sleeps,
    passes,
  };
  QUEUE_COUNTERS.forEach((k, i) => {
    counters[i] = own[k] ?? s[k] ?? 0;
  });
};

const setState = (s: number) => {
  Atomics.store(control, Q_STATE, s);
  Atomics.notify(control, Q_STATE);
};

setState(QueueState.Parked);
let parked = true;
for (;;) {
  const command = Atomics.load(control, Q_COMMAND);
  if (command === QueueCommand.Stop) break;
  if (command === QueueCommand.Park || failed) {
    if (!parked) {
      parked = true;
      publish();
      setState(QueueState.Parked);
    }
    Atomics.wait(control, Q_COMMAND, command, 1000);
    continue;
  }
  if (parked) {
    parked = false;
    setState(QueueState.Serving);
  }
  const seen = Atomics.load(bell, g.doorbellWord);
  passes++;
  channel.drain();
  publish();
  const inbound = channel.rings.inbound;
  // A pass that stopped at its round limit left the ring masked with packets in it: go on at once.
  if (inbound.interruptMask() !== 0 && inbound.writeIndex() !== inbound.readIndex()) continue;
  if (waitForChange(bell, g.doorbellWord, seen, data, waits, 50, budget) !== seen) wakes++;
}
publish();
for (const l of luns) l.disk.backend.close(); // borrowed descriptors: left open for their owner
setState(QueueState.Stopped);
