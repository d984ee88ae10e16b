/**
 * The body of a VM's device thread: attaches to the partition's shared buffers, builds the VM's
 * devices, and serves intercepts, channel messages and VMBus signals with the adaptive wait
 * until told to stop. Console output leaves in batches by postMessage (it is not a data path);
 * guest I/O never crosses to another thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PartitionHandle } from '../../hypervisor/partition-handle.ts';
import type { DeviceThreadData, DeviceThreadMessage, DeviceThreadStats } from './device-thread.ts';
import { VmDevices } from './vm-devices.ts';

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
const deviceStats = (): DeviceThreadStats => ({
  served: partition.inbox.served,
  rootWaitSpinHits: partition.inbox.waits.spinHits,
  rootWaitSleeps: partition.inbox.waits.sleeps,
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
post({ kind: 'ready' });
partition.inbox.serveBlocking({ spinIterations: data.spinIterations }, () => Atomics.load(stop, 0) === 0, 20, flushConsole);
flushConsole();
post({
  kind: 'stopped',
  stats: deviceStats(),
});
devices.close();
