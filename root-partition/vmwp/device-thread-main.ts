/**
 * The body of a VM's device thread: attaches to the partition's shared buffers, builds the VM's
 * devices, and serves intercepts, channel messages and VMBus signals with the adaptive wait
 * until told to stop. Console output leaves in batches by postMessage (it is not a data path);
 * guest I/O never crosses to another thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionHandle } from '../../hypervisor/partition-handle.ts';
import { P_DOORBELL } from '../../hypervisor/partition-control.ts';
import { STOP_MAIL, STOP_WORD, type DeviceThreadData, type DeviceThreadMessage, type DeviceThreadStats } from './device-thread.ts';
import { VmDevices } from './vm-devices.ts';
import { DeviceRequestServer, type DeviceRequest } from './device-requests.ts';

const data = workerData as DeviceThreadData;
const post = (m: DeviceThreadMessage) => parentPort!.postMessage(m);
const stop = new Int32Array(data.stop);
const partition = PartitionHandle.attach(data.partition);
let pending: Buffer[] = [];
let pendingBytes = 0;
const flushConsole = () => {
  if (pendingBytes === 0) return;
  post({ kind: 'console', bytes: Buffer.concat(pending) });
  pending = [];
  pendingBytes = 0;
};

let devices: VmDevices;
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
  storvsp: devices.storVsps.map((v) => ({ ...v.stats })),
  io: Object.fromEntries([...devices.platform.bus.allCounters()].map(([k, v]) => [k, { ...v }])),
});
// Taken inside the marking VP's exit, before anything else runs for it: the counters are exact.
const postCode = (code: number) => {
  const cpu = process.cpuUsage();
  const vps = Array.from({ length: partition.vpCount }, (_, vp) => partition.ctl.counters(vp) as Record<string, number>);
  post({ kind: 'post-code', snapshot: { code, referenceTime: partition.referenceTime(), cpu, vps, device: deviceStats() } });
};
try {
  devices = new VmDevices(
    partition,
    data.devices,
    (bytes) => {
      pending.push(Buffer.from(bytes));
      pendingBytes += bytes.length;
      if (pendingBytes >= 4096 || bytes.includes(10)) flushConsole();
    },
    (message) => post({ kind: 'log', message }),
    postCode,
  );
} catch (e) {
  post({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  process.exit(0);
}
partition.inbox.onHandlerError = (error, vp) => post({ kind: 'log', message: `device error on VP ${vp}'s access: ${error instanceof Error ? error.message : String(error)}` });
let requests: DeviceRequestServer;
try {
  requests = new DeviceRequestServer(
    devices!, () => BigInt(partition.referenceTime()), data.devices.integrationServices, (message) => post({ kind: 'log', message }),
    (status) => post({ kind: 'heartbeat', status }),
    (items) => post({ kind: 'kvp', items }),
  );
  if (data.restore) devices!.platform.restoreState(data.restore);
} catch (e) {
  devices!.close();
  post({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  process.exit(0);
}
parentPort!.on('message', (m: { kind: 'request'; id: number; request: DeviceRequest } | { kind: 'console-input'; bytes: Uint8Array }) => {
  if (m.kind === 'console-input') {
    devices.platform.com1.receive(m.bytes);
    return;
  }
  if (m.kind !== 'request') return;
  requests.handle(m.request).then(
    (value) => post({ kind: 'reply', id: m.id, ok: true, value }),
    (e: Error & { code?: string }) => post({ kind: 'reply', id: m.id, ok: false, error: e.message, code: e.code ?? 'VMWP_ERR_DEVICE' }),
  );
});
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
    () => !quiet && Atomics.load(stop, STOP_WORD) === 0 && Atomics.load(stop, STOP_MAIL) === 0 && performance.now() < sliceEnd,
    IDLE_SLEEP_MS,
    () => {
      flushConsole();
      quiet = true;
    },
  );
  Atomics.store(stop, STOP_MAIL, 0);
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
flushConsole();
requests.dispose();
const finalStats = deviceStats();
// Closed before 'stopped' is posted: the main thread may terminate this thread as soon as it has
// the counters, and the disks' descriptors (with their locks) belong to the process, not the thread.
devices.close();
post({
  kind: 'stopped',
  stats: finalStats,
});
