// An enlightened guest with the four integration services: connects to VMBus, opens heartbeat,
// shutdown, time sync and KVP, publishes its intrinsic KVP items and one item of its own, and
// serves the host until it asks for a shutdown, which this guest accepts and obeys (it halts).
// Prints key=value lines on COM1 for test/ic/ic-guest.test.ts. Command-line words:
//   hang            — after answering 3 heartbeats, stop serving anything (a hung guest);
//   ignore-shutdown — read shutdown requests but never answer them;
//   refuse-shutdown — answer every shutdown request with E_FAIL.
import { cli, halt, sti } from "../../platform/hv";
import { puts, putDec, putBytes } from "../../kernel/console";
import { cmdlineHas } from "../../kernel/boot-info";
import { kernelBoot } from "../../kernel/boot";
import { pageAlloc } from "../../kernel/pages";
import { enableHypercalls } from "../../hv/hypercall";
import { vmbusConnect, vmbusInit } from "../../vmbus/vmbus-driver";
import { IcDevice, icServe, icWait } from "../../drivers/ic";
import {
  icHaltForShutdown, icHeartbeatOpen, icHeartbeatsAnswered, icKvpOpen, icKvpPublish, icKvpPublishIntrinsic, icKvpRequests, icKvpStore,
  icShutdownOpen, icShutdownRequested, icShutdownReasonCode, icTimeNow, icTimeSamples, icTimeSyncOpen, icTimeSyncs,
} from "../../drivers/ic-services";
import { KVP_POOL_AUTO_EXTERNAL, KVP_POOL_EXTERNAL, KVP_POOL_GUEST, KVP_SLOTS, kvpSlot, kvpSlotKey, kvpSlotKeySize, kvpSlotValue, kvpSlotValueSize } from "../../drivers/ic-kvp-protocol";

const VMBUS_VECTOR: u32 = 0x30;
const FILETIME_UNIX_EPOCH: u64 = 116444736000000000;
const TEXT: usize = memory.data(1100, 8);

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\n");
}

/** UTF-16 text (`bytes` with its NUL) as ASCII, '?' for anything wider. */
function putUtf16(gpa: usize, bytes: u32): void {
  let n: u32 = 0;
  for (let i: u32 = 0; i + 1 < bytes && n < 1024; i += 2) {
    const c = load<u16>(gpa + i);
    if (c == 0) break;
    store<u8>(TEXT + n++, c < 0x80 ? <u8>c : 0x3f);
  }
  putBytes(TEXT, n);
}

/** Prints every item of a host-written pool: "kvp<pool> key=value". */
function printPool(pool: u32): void {
  const st = icKvpStore();
  for (let i: u32 = 0; i < KVP_SLOTS; i++) {
    const s = kvpSlot(st, pool, i);
    if (kvpSlotKeySize(s) == 0) continue;
    puts("kvp");
    putDec(pool);
    puts(" ");
    putUtf16(kvpSlotKey(s), kvpSlotKeySize(s));
    puts("=");
    putUtf16(kvpSlotValue(s), kvpSlotValueSize(s));
    puts("\n");
  }
}

function refuse(flags: u32, reason: u32): bool { return false; }

function main(): i32 {
  kv("hypercalls", enableHypercalls(pageAlloc()) ? 1 : 0);
  kv("vmbus_init", vmbusInit(VMBUS_VECTOR) ? 1 : 0);
  sti();
  kv("connected", vmbusConnect() ? 1 : 0);
  const devices = new StaticArray<IcDevice | null>(4);
  devices[0] = icHeartbeatOpen();
  devices[1] = cmdlineHas("refuse-shutdown") ? icShutdownOpen(refuse) : icShutdownOpen();
  devices[2] = icTimeSyncOpen();
  devices[3] = icKvpOpen();
  let opened: u32 = 0;
  for (let i = 0; i < 4; i++) if (devices[i] != null) opened++;
  kv("ic_opened", opened);
  kv("kvp_intrinsic", icKvpPublishIntrinsic("tsvisor-ic-guest", "tsvisor child SDK", "0.1") ? 1 : 0);
  kv("kvp_guest_item", icKvpPublish(KVP_POOL_GUEST, "GuestState", "serving") ? 1 : 0);
  if (cmdlineHas("ignore-shutdown") && devices[1] != null) devices[1]!.ignoring = true;
  const hang = cmdlineHas("hang");
  let samples: u32 = 0, kvpRequests: u32 = 0;
  for (;;) {
    for (let i = 0; i < 4; i++) {
      const d = devices[i];
      if (d != null && icServe(d) < 0) kv("ring_error", i);
    }
    if (icTimeSamples() != samples) {
      samples = icTimeSamples();
      kv("time_samples", samples);
      kv("time_syncs", icTimeSyncs());
      kv("time_unix_ms", (icTimeNow() - FILETIME_UNIX_EPOCH) / 10000);
    }
    if (icKvpRequests() != kvpRequests) {
      kvpRequests = icKvpRequests();
      printPool(KVP_POOL_EXTERNAL);
      printPool(KVP_POOL_AUTO_EXTERNAL);
    }
    if (icShutdownRequested() != 0xffffffff) break;
    if (hang && icHeartbeatsAnswered() >= 3) {
      puts("hung\n");
      cli();
      halt(); // interrupts off: nothing wakes this VP again
    }
    icWait(devices);
  }
  kv("heartbeats", icHeartbeatsAnswered());
  kv("shutdown_flags", icShutdownRequested());
  kv("shutdown_reason", icShutdownReasonCode());
  puts("shutting down\n");
  icHaltForShutdown();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main);
}

export { interrupt } from "../../kernel/boot";
