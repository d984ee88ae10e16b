/**
 * What a StorVsp is configured with (StorVspConfig), its defaults for queued I/O, and the
 * counters it keeps (StorVspStats).
 */
import * as os from 'node:os';
import type { WaitPolicy } from '../../../hypervisor/adaptive-wait.ts';
import type { ScsiLunConfig } from './scsi-controller.ts';
import type { SubChannelThreadsSetting } from './storvsp-queue-threads.ts';

/** What StorVsp needs from the VMBus host to offer sub-channels (VmbusHost.server satisfies it). */
export interface SubChannelOfferer {
  offerSubchannel(primaryRelid: number): number;
}

export interface StorVspConfig {
  /** This controller's instance GUID (Hyper-V gives each SCSI controller its own). */
  instanceId: string;
  /** The disks on this controller, e.g. lunsAtLocations([disk0, disk1]). */
  luns: readonly ScsiLunConfig[];
  /**
   * Sub-channels the guest may ask for (QUERY_PROPERTIES max_channel_cnt). Hyper-V offers about
   * one per VP beyond the first; 0 disables multi-channel. Needs `subChannels`.
   */
  maxSubChannels?: number;
  /** Who offers the sub-channels: pass `vmbusHost.server`. */
  subChannels?: SubChannelOfferer;
  /** QUERY_PROPERTIES max_transfer_bytes (default 256 KiB, as OpenVMM). */
  maxTransferBytes?: number;
  /** Accepted vstor versions, newest first (default: every version the protocol layer knows). */
  versions?: readonly number[];
  /** How long the host keeps polling an idle request ring before it asks to be signalled again; 0 = no polling. */
  pollSpinMicros?: number;
  /**
   * READ/WRITE of at least this many bytes, and SYNCHRONIZE CACHE, run queued (several at once in
   * libuv's thread pool, completed in any order) on disks that can queue (raw images); smaller
   * ones complete synchronously on the device thread, which is faster for them. Default
   * defaultQueueMinBytes(); Infinity turns queuing off, 0 queues every read and write.
   */
  queueMinBytes?: number;
  /** Requests one channel may have queued at once (default DEFAULT_MAX_QUEUED_PER_CHANNEL); the ring's size also bounds it. */
  maxQueuedPerChannel?: number;
  /** Where channel-level problems go (refused GPA ranges, ignored packet types). */
  log?: (message: string) => void;
  /**
   * Serve each sub-channel on a queue thread of its own (storvsp-queue-threads.ts), for raw
   * images: 'auto' (default) only on a host with ≥ 4 cores, 'on', 'off'.
   */
  subChannelThreads?: SubChannelThreadsSetting;
  /** The queue threads' doorbell wait (default: defaultWaitPolicy()). */
  queueThreadWait?: WaitPolicy;
}

/** Below this a transfer costs less done synchronously than a hop to the thread pool and back (docs/storage.md). */
export const QUEUE_MIN_BYTES_WITH_SPARE_CORES = 64 * 1024;

/**
 * The default queueMinBytes: queued I/O needs cores beside the VPs and the device thread for the
 * pool's threads — with fewer than four, every workload measured faster synchronously
 * (docs/storage.md), so nothing is queued.
 */
export function defaultQueueMinBytes(cores = os.availableParallelism()): number {
  return cores >= 4 ? QUEUE_MIN_BYTES_WITH_SPARE_CORES : Infinity;
}
/** Linux storvsc queues at most a few hundred commands per channel (its ring bounds it, as here). */
export const DEFAULT_MAX_QUEUED_PER_CHANNEL = 256;

export interface StorVspStats {
  channelsOpened: number;
  subChannelsOffered: number;
  requests: number;
  /** GPA-direct requests whose ranges were refused (outside guest memory, malformed). */
  badGpaRanges: number;
  /** Packets of a type storvsp does not take (completions from the guest, transfer pages). */
  ignoredPackets: number;
  /** Requests that asked for no completion: not executed, as nobody could learn the result. */
  unanswered: number;
  /** Drains started by the poll window rather than by a guest signal. */
  polledDrains: number;
  /** Requests that ran queued; of their completions, those written after the ring had no room at first. */
  queued: number;
  completionsDeferred: number;
  /** Most requests one channel had queued at once; times reading stopped at the per-channel bound. */
  maxInFlight: number;
  inFlightStalls: number;
  /**
   * Where a request's host time goes, stage by stage (µs, cumulative; one clock read per stage):
   * `readUs` taking the packet off the ring (copied out of guest memory), `validateUs` checking its
   * GPA ranges and making the views, `executeUs` the SCSI target with the backend's I/O in it
   * (`backendUs`, the pread/pwrite/fdatasync into guest memory, when the backend keeps that
   * count), `completeUs` writing the completion packet, `signalUs` the signal to the guest after
   * the batch (counted at the channel's next batch). `batchUs` is every batch from its first
   * packet to its last completion written.
   */
  batchUs: number;
  readUs: number;
  validateUs: number;
  executeUs: number;
  backendUs: number;
  completeUs: number;
  signalUs: number;
}
