/**
 * The body of a VM's device thread: attaches to the partition's shared buffers, builds the VM's
 * devices, and serves intercepts, channel messages and VMBus signals with the adaptive wait
 * until told to stop. Console output leaves in batches by postMessage (it is not a data path);
 * guest I/O never crosses to another thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionHandle } from '../../hypervisor/partition-handle.ts';
import { P_DOORBELL, P_REQUESTED_STATE, RequestedState } from '../../hypervisor/partition-control.ts';
import { STOP_MAIL, STOP_WORD, type DeviceThreadBegin, type DeviceThreadData, type DeviceThreadMessage, type DeviceThreadStats } from './device-thread.ts';
import { VmDevices } from './vm-devices.ts';
import { loadUserVsps } from './user-vsp-loader.ts';
import { DeviceRequestServer, type DeviceRequest } from './device-requests.ts';
import { GuestLogLimiter } from './guest-log-limiter.ts';
import { CONSOLE_IN_FLIGHT_MAX, CONSOLE_MESSAGE_MAX, ConsoleOutputBuffer } from './console-output-buffer.ts';

const data = workerData as DeviceThreadData;
const post = (m: DeviceThreadMessage) => parentPort!.postMessage(m);
const stop = new Int32Array(data.stop);
const partition = PartitionHandle.attach(data.partition);
// COM1 output: bounded here (console-output-buffer.ts), posted in pieces while the main thread
// has acknowledged enough of what it was sent, so a guest can neither grow this thread's queue
// to the main thread nor the main thread's.
const consoleOut = new ConsoleOutputBuffer();
let consoleInFlight = 0;
const flushConsole = (final = false) => {
  while (consoleOut.pending > 0 && (final || consoleInFlight < CONSOLE_IN_FLIGHT_MAX)) {
    const bytes = consoleOut.take(final ? CONSOLE_MESSAGE_MAX : Math.min(CONSOLE_MESSAGE_MAX, CONSOLE_IN_FLIGHT_MAX - consoleInFlight))!;
    consoleInFlight += bytes.length;
    post({ kind: 'console', bytes, dropped: consoleOut.dropped });
  }
};

// Every log line from here is one a guest can cause: rate-limited per kind, the rest counted.
const guestLog = new GuestLogLimiter((message) => post({ kind: 'log', message, suppressed: guestLog.suppressed }));

let devices: VmDevices;
let requests: DeviceRequestServer | undefined;
/** Times the thread parked on its event loop with nothing to serve. */
let parked = 0;
const deviceStats = (): DeviceThreadStats => ({
  served: partition.inbox.served,
  rootWaitSpinHits: partition.inbox.waits.spinHits,
  rootWaitSleeps: partition.inbox.waits.sleeps,
  rootWaitSleptUs: partition.inbox.waits.sleptUs,
  rootSpinBudget: partition.inbox.spinBudget?.iterations ?? data.spinIterations,
  parked,
  vmbus: devices.vmbus ? { ...devices.vmbus.stats } : null,
  storvsp: devices.storVsps.map((v) => v.statsSnapshot()),
  ic: icStats(),
  io: Object.fromEntries([...devices.platform.bus.allCounters()].map(([k, v]) => [k, { ...v }])),
});
function icStats(): DeviceThreadStats['ic'] {
  const ic = requests?.ic;
  if (!ic) return null;
  return {
    heartbeat: { ...ic.heartbeat.stats, ...ic.heartbeat.beats },
    shutdown: { ...ic.shutdown.stats },
    timesync: { ...ic.timeSync.stats },
    kvp: { ...ic.kvp.stats },
  };
}
// Taken inside the marking VP's exit, before anything else runs for it: the counters are exact.
const postCode = (code: number) => {
  const cpu = process.cpuUsage();
  const vps = Array.from({ length: partition.vpCount }, (_, vp) => partition.ctl.counters(vp) as Record<string, number>);
  post({ kind: 'post-code', snapshot: { code, referenceTime: partition.referenceTime(), cpu, vps, device: deviceStats() } });
};
if (data.prestart) {
  // Loaded ahead of the state (a live migration's destination): the devices are built, and the
  // disks opened, only when the state is here and the source has let the disks go.
  const begin = new Promise<DeviceThreadBegin>((r) => parentPort!.once('message', r));
  post({ kind: 'prepared' });
  const m = await begin;
  if (m.restore) data.restore = m.restore;
}
try {
  const userVsps = data.devices.userVsps?.length ? await loadUserVsps(data.devices.userVsps, data.devices.storageRoots) : [];
  devices = new VmDevices(
    partition,
    data.devices,
    (bytes) => {
      consoleOut.write(bytes);
      if (consoleOut.pending >= 4096 || bytes.includes(10)) flushConsole();
    },
    (message) => guestLog.log(message),
    postCode,
    userVsps,
    // One message per drive at most (the drive keeps only its first failure): bounded whatever the guest does.
    (path, error) => post({ kind: 'disk-failure', path, message: error.message }),
  );
} catch (e) {
  post({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  process.exit(0);
}
partition.inbox.onHandlerError = (error, vp) => guestLog.log(`device error on VP ${vp}'s access: ${error instanceof Error ? error.message : String(error)}`);
try {
  requests = new DeviceRequestServer(
    devices!,
    () => BigInt(partition.referenceTime()),
    data.devices.integrationServices,
    (message) => guestLog.log(message),
    (status) => post({ kind: 'heartbeat', status }),
    (items) => post({ kind: 'kvp', items }),
  );
  requests.vpsParked = () => Atomics.load(partition.ctl.i32, P_REQUESTED_STATE >> 2) === RequestedState.Pause;
  // The VPs are parked: serving ends (bounded rounds guard against a handler that requeues).
  requests.serveInFlight = () => {
    for (let round = 0; round < 64 && partition.inbox.pump() > 0; round++);
  };
  if (data.restore) requests.restoreDevices(data.restore);
} catch (e) {
  devices!.close();
  post({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  process.exit(0);
}
parentPort!.on(
  'message',
  (m: { kind: 'request'; id: number; request: DeviceRequest } | { kind: 'console-input'; bytes: Uint8Array } | { kind: 'console-ack'; bytes: number }) => {
    if (m.kind === 'console-ack') {
      consoleInFlight -= m.bytes;
      flushConsole();
      return;
    }
    if (m.kind === 'console-input') {
      devices.platform.com1.receive(m.bytes);
      return;
    }
    if (m.kind !== 'request') return;
    requests!.handle(m.request).then(
      (value) => {
        post({ kind: 'reply', id: m.id, ok: true, value });
        if (m.request.op === 'save-devices') watchAbandonedSave();
      },
      (e: Error & { code?: string }) => post({ kind: 'reply', id: m.id, ok: false, error: e.message, code: e.code ?? 'VMWP_ERR_DEVICE' }),
    );
  },
);
/**
 * After save-devices VMBus stays still. Should the save not be used (the worker could not write
 * the file) the VM runs on in this thread: once the partition is asked to run again, VMBus acts
 * again. A timer, because a guest waiting on VMBus would ring no doorbell.
 */
let saveWatch: NodeJS.Timeout | null = null;
function watchAbandonedSave(): void {
  if (saveWatch !== null) return;
  saveWatch = setInterval(() => {
    if (Atomics.load(partition.ctl.i32, P_REQUESTED_STATE >> 2) !== RequestedState.Run) return;
    clearInterval(saveWatch!);
    saveWatch = null;
    requests!.resumeAfterSave();
  }, 2);
}
post({ kind: 'ready' });
// Served in two modes. Busy: slices of spinning and short sleeps on the doorbell (exit latency),
// with a turn of this thread's event loop between them; a slice ends early when the main thread
// raises the mail word (STOP_MAIL) and rings the doorbell. Idle — a sleep ended with nothing
// new — the thread parks: Atomics.waitAsync on the doorbell hands it to its event loop, which
// sleeps until the doorbell rings, the next timer of this thread is due (the integration
// services' beats) or the main thread posts a request. An idle VM wakes nobody periodically.
const SLICE_MS = 10;
const IDLE_SLEEP_MS = 20;
const doorbell = partition.ctl.i32;
const DOORBELL = P_DOORBELL >> 2;
// The request port keeps this thread alive; this holds it too while parked, without waking it.
const keepAlive = setInterval(() => {}, 2 ** 30);
while (Atomics.load(stop, STOP_WORD) === 0) {
  const sliceEnd = performance.now() + SLICE_MS;
  let quiet = false;
  partition.inbox.serveBlocking(
    { spinIterations: data.spinIterations, maxSpinIterations: data.maxSpinIterations },
    () => !quiet && Atomics.load(stop, STOP_WORD) === 0 && Atomics.load(stop, STOP_MAIL) === 0 && performance.now() < sliceEnd && devices.storageInFlight === 0,
    IDLE_SLEEP_MS,
    () => {
      flushConsole();
      guestLog.flush();
      quiet = true;
    },
  );
  Atomics.store(stop, STOP_MAIL, 0);
  if (devices.storageInFlight > 0) {
    // Disk requests run in libuv's pool and complete on this thread's event loop, which a
    // blocking wait would hold up: wait for the doorbell without blocking until they are done.
    const seen = Atomics.load(doorbell, DOORBELL);
    if (partition.inbox.pump() > 0) await new Promise((r) => setImmediate(r));
    else {
      const w = Atomics.waitAsync(doorbell, DOORBELL, seen, 1);
      if (w.async) await w.value;
    }
    continue;
  }
  if (!quiet) {
    await new Promise((r) => setImmediate(r));
    continue;
  }
  // Read the doorbell before the last look: a ring after it makes the wait return at once.
  const seen = Atomics.load(doorbell, DOORBELL);
  if (partition.inbox.pump() > 0 || Atomics.load(stop, STOP_WORD) !== 0) continue;
  parked++;
  const w = Atomics.waitAsync(doorbell, DOORBELL, seen);
  if (w.async) await w.value;
}
clearInterval(keepAlive);
if (saveWatch !== null) clearInterval(saveWatch);
flushConsole(true); // at most CONSOLE_PENDING_MAX: what the guest wrote last reaches VMMS
guestLog.flush(true);
requests!.dispose();
// The queue threads borrow the disks' descriptors: ended (joined) before the disks close.
await devices.stopStorageThreads();
// A request still in libuv's pool would otherwise complete into closed disks (bounded: a stuck disk must not hold the stop).
await Promise.race([devices.storageIdle(), new Promise((r) => setTimeout(r, 2000))]);
const finalStats = deviceStats();
// Closed before 'stopped' is posted: the main thread may terminate this thread as soon as it has
// the counters, and the disks' descriptors (with their locks) belong to the process, not the thread.
devices.close();
post({
  kind: 'stopped',
  stats: finalStats,
});
