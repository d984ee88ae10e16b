// The four integration-service drivers on the IC framework (ic.ts): heartbeat, shutdown, time
// sync and KVP exchange, with the hooks a guest program uses. Message versions each driver takes,
// in preference order, are Linux's (drivers/hv/hv_util.c, hv_kvp.c).
// Single-VP state (VP 0 runs the services) lives in memory blocks, not module globals.
import { HeartbeatInterface, KvpInterface, ShutdownInterface, TimeSyncInterface } from "../../abi/vmbus-channel";
import { cli, halt } from "../platform/hv";
import { pageAllocRun } from "../kernel/pages";
import { referenceTime } from "../hv/synic";
import { IcDevice, icOpen } from "./ic";
import {
  HEARTBEAT_APP_HEALTHY, ICMSGTYPE_HEARTBEAT, ICMSGTYPE_KVPEXCHANGE, ICMSGTYPE_SHUTDOWN, ICMSGTYPE_TIMESYNC, TIMESYNC_STATE_SIZE,
  icHeartbeatAnswer, icShutdownAnswer, icShutdownFlags, icShutdownReason, icTimeSyncApply, icTimeSyncNow,
} from "./ic-protocol";
import { KVP_POOL_AUTO, KVP_STORE_SIZE, icKvpAnswer, kvpPutString } from "./ic-kvp-protocol";

/** Interface GUIDs in wire layout (abi/vmbus-channel.ts). */
export const IC_HEARTBEAT_GUID: usize = memory.data<u32>([HeartbeatInterface.W0, HeartbeatInterface.W1, HeartbeatInterface.W2, HeartbeatInterface.W3]);
export const IC_SHUTDOWN_GUID: usize = memory.data<u32>([ShutdownInterface.W0, ShutdownInterface.W1, ShutdownInterface.W2, ShutdownInterface.W3]);
export const IC_TIMESYNC_GUID: usize = memory.data<u32>([TimeSyncInterface.W0, TimeSyncInterface.W1, TimeSyncInterface.W2, TimeSyncInterface.W3]);
export const IC_KVP_GUID: usize = memory.data<u32>([KvpInterface.W0, KvpInterface.W1, KvpInterface.W2, KvpInterface.W3]);

// Message versions (major << 16 | minor), Linux's preference order.
const HEARTBEAT_VERSIONS: usize = memory.data<u32>([0x30000, 0x10000]);
const SHUTDOWN_VERSIONS: usize = memory.data<u32>([0x30002, 0x30001, 0x30000, 0x10000]);
const TIMESYNC_VERSIONS: usize = memory.data<u32>([0x40000, 0x30000, 0x10000]);
const KVP_VERSIONS: usize = memory.data<u32>([0x40000, 0x30000]);

// Service state: [0] heartbeat application state, [4] shutdown flags taken (0xffffffff = none),
// [8] shutdown reason, [12] heartbeats answered, [16] KVP store GPA, [20] KVP scratch GPA,
// [24] KVP requests answered, [28] KVP sets taken, [32] time-sync state (32 bytes).
const IC: usize = memory.data(64, 8);
const TIMESYNC_STATE: usize = IC + 32;

/** Decides whether to accept a shutdown: `flags` (bit 0 force, bit 1 restart, bit 2 hibernate) and the reason code. */
export type IcShutdownHook = (flags: u32, reasonCode: u32) => bool;
function acceptAll(flags: u32, reasonCode: u32): bool { return true; }
// The hook is a function-table index; kept per instance (VP 0 is the one that serves).
let shutdownHook: IcShutdownHook = acceptAll;

// ---- heartbeat

function onHeartbeat(dev: IcDevice, msg: usize, length: u32): bool {
  icHeartbeatAnswer(msg, length, load<u32>(IC));
  store<u32>(IC, load<u32>(IC, 12) + 1, 12);
  return true;
}

/** Opens the heartbeat service; the guest answers every heartbeat with its application state (Healthy). */
export function icHeartbeatOpen(): IcDevice | null {
  store<u32>(IC, HEARTBEAT_APP_HEALTHY);
  return icOpen(IC_HEARTBEAT_GUID, ICMSGTYPE_HEARTBEAT, HEARTBEAT_VERSIONS, 2, onHeartbeat);
}

/** Application state reported with each heartbeat (1 Healthy, 2 Critical: the host shows Degraded). */
export function icHeartbeatSetApplicationState(state: u32): void { store<u32>(IC, state); }
/** Heartbeats answered since icHeartbeatOpen. */
export function icHeartbeatsAnswered(): u32 { return load<u32>(IC, 12); }

// ---- shutdown

function onShutdown(dev: IcDevice, msg: usize, length: u32): bool {
  const flags = icShutdownFlags(msg, length);
  const accept = flags != 0xffffffff && shutdownHook(flags, icShutdownReason(msg));
  if (icShutdownAnswer(msg, length, accept)) {
    store<u32>(IC, flags, 4);
    store<u32>(IC, icShutdownReason(msg), 8);
  }
  return true;
}

/** Opens the shutdown service; `hook` decides each request (default: accept). */
export function icShutdownOpen(hook: IcShutdownHook = acceptAll): IcDevice | null {
  shutdownHook = hook;
  store<u32>(IC, 0xffffffff, 4);
  return icOpen(IC_SHUTDOWN_GUID, ICMSGTYPE_SHUTDOWN, SHUTDOWN_VERSIONS, 4, onShutdown);
}

/** The flags of an accepted shutdown request, or 0xffffffff while none came. The program then shuts down. */
export function icShutdownRequested(): u32 { return load<u32>(IC, 4); }
/** reason_code of the accepted shutdown request (Windows SHTDN_REASON_*; 0 when none was given). */
export function icShutdownReasonCode(): u32 { return load<u32>(IC, 8); }

// ---- time sync

function onTimeSync(dev: IcDevice, msg: usize, length: u32): bool {
  icTimeSyncApply(msg, length, dev.version >> 16, referenceTime(), TIMESYNC_STATE);
  return true;
}

/** Opens the time-sync service with no sample yet; each SYNC/SAMPLE message updates the offset icTimeNow uses. */
export function icTimeSyncOpen(): IcDevice | null {
  memory.fill(TIMESYNC_STATE, 0, TIMESYNC_STATE_SIZE);
  return icOpen(IC_TIMESYNC_GUID, ICMSGTYPE_TIMESYNC, TIMESYNC_VERSIONS, 3, onTimeSync);
}

/** UTC now as a Windows FILETIME (100 ns since 1601), from the partition reference time and the host's last sample; 0 before one. */
export function icTimeNow(): u64 { return icTimeSyncNow(TIMESYNC_STATE, referenceTime()); }
/** Time samples taken (SYNC and SAMPLE). */
export function icTimeSamples(): u32 { return load<u32>(TIMESYNC_STATE, 8); }
/** SYNC samples taken (the host asked for the clock to be set at once). */
export function icTimeSyncs(): u32 { return load<u32>(TIMESYNC_STATE, 12); }

// ---- KVP

function onKvp(dev: IcDevice, msg: usize, length: u32): bool {
  icKvpAnswer(msg, length, load<usize>(IC, 16));
  store<u32>(IC, load<u32>(IC, 24) + 1, 24);
  return true;
}

/** Opens KVP exchange with an empty store (every pool). */
export function icKvpOpen(): IcDevice | null {
  const pages = (KVP_STORE_SIZE + 4095) >> 12;
  const st = pageAllocRun(pages);
  const scratch = pageAllocRun(1);
  if (st == 0 || scratch == 0) return null;
  memory.fill(st, 0, KVP_STORE_SIZE);
  store<usize>(IC, st, 16);
  store<usize>(IC, scratch, 20);
  return icOpen(IC_KVP_GUID, ICMSGTYPE_KVPEXCHANGE, KVP_VERSIONS, 2, onKvp);
}

/** The KVP store (kvpFind / kvpSlot* in ic-kvp-protocol.ts read it); 0 before icKvpOpen. */
export function icKvpStore(): usize { return load<usize>(IC, 16); }
/** KVP requests answered (any operation, any status). */
export function icKvpRequests(): u32 { return load<u32>(IC, 24); }

/** Publishes an item in `pool` (Guest for the guest's own items, Auto for intrinsic ones). */
export function icKvpPublish(pool: u32, key: string, value: string): bool {
  const st = icKvpStore();
  if (st == 0) return false;
  return kvpPutString(st, pool, key, value, load<usize>(IC, 20));
}

/**
 * The guest intrinsic items (pool Auto) a Linux guest's KVP daemon reports (hv_kvp_daemon.c
 * kvp_get_os_info / kvp_get_domain_name): host name and OS identity.
 */
export function icKvpPublishIntrinsic(hostName: string, osName: string, osVersion: string): bool {
  return icKvpPublish(KVP_POOL_AUTO, "FullyQualifiedDomainName", hostName)
    && icKvpPublish(KVP_POOL_AUTO, "OSName", osName)
    && icKvpPublish(KVP_POOL_AUTO, "OSVersion", osVersion)
    && icKvpPublish(KVP_POOL_AUTO, "ProcessorArchitecture", "wasm32")
    && icKvpPublish(KVP_POOL_AUTO, "IntegrationServicesVersion", "1.0");
}

/** After an accepted shutdown: the guest stops for good (interrupts off, halted), as powering off would. */
export function icHaltForShutdown(): void {
  cli();
  halt();
}
