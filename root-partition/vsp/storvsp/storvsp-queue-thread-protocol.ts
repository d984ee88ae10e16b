/**
 * What a storvsp queue thread and the thread that owns the VMBus host share: the command and
 * state words they hand a sub-channel over with (Atomics, never postMessage: the data path), the
 * counters the queue thread keeps, and the few messages it posts (a failure, a log line).
 */
import type { PartitionShare } from '../../../hypervisor/partition-handle.ts';
import type { OffloadedChannelGeometry } from '../../../vmbus/host/channel-offload.ts';
import type { SharedRawDescriptor } from '../../storage/raw-disk.ts';

/** Int32 words of the control buffer. */
export const Q_COMMAND = 0;
export const Q_STATE = 1;
export const Q_WORDS = 2;

/** What the owner asks: serve the rings, leave them alone (parked), or end. */
export const QueueCommand = { Serve: 0, Park: 1, Stop: 2 } as const;
/** Where the queue thread is: it touches the rings only while Serving; Loaded = waiting for its sub-channel. */
export const QueueState = { Starting: 0, Serving: 1, Parked: 2, Stopped: 3, Loaded: 4 } as const;

/** The queue thread's StorVsp stats that the owning StorVsp adds into its own (its stats() sums them). */
export const QUEUE_STORVSP_STATS = [
  'requests',
  'badGpaRanges',
  'ignoredPackets',
  'unanswered',
  'batchUs',
  'readUs',
  'validateUs',
  'executeUs',
  'backendUs',
  'completeUs',
  'signalUs',
] as const;
/** Float64 counters the queue thread publishes after each pass (its StorVsp's stats and its waits). */
export const QUEUE_COUNTERS = [...QUEUE_STORVSP_STATS, 'signalsToGuest', 'wakes', 'spinHits', 'sleeps', 'passes'] as const;
export type QueueCounterName = (typeof QUEUE_COUNTERS)[number];

export interface QueueThreadLun {
  pathId: number;
  targetId: number;
  lun: number;
  diskId: Uint8Array;
  image: SharedRawDescriptor;
}

/** What a queue thread starts with: it loads, then waits for its sub-channel (QueueThreadBind). */
export interface QueueThreadData {
  share: PartitionShare;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  versions?: readonly number[];
  maxTransferBytes?: number;
  spinIterations: number;
  maxSpinIterations?: number;
}

/** The sub-channel a started thread is to serve (posted once: the hand-overs themselves are Atomics). */
export interface QueueThreadBind {
  kind: 'bind';
  geometry: OffloadedChannelGeometry;
  /** The vstor version the primary channel negotiated (a sub-channel carries I/O only). */
  version: number;
  luns: QueueThreadLun[];
}

export type QueueThreadMessage =
  | { kind: 'channel-failed'; reason: string }
  /** A request's I/O failed on LUN `lun`'s image (DiskIoError's fields): the owner's drive takes it. */
  | { kind: 'disk-failure'; lun: number; path: string; operation: 'read' | 'write' | 'flush'; errno: string; lba: number; detail: string }
  | { kind: 'log'; message: string; suppressed: number };
