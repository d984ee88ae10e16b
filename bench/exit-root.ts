/**
 * A root device thread for the exit benchmark: serves the partition's intercepts with a trivial
 * device (port 0xE0 reads 1; port 0xE2 fills string reads with 1s) until told to stop, spinning
 * then sleeping on the doorbell exactly as a VMWP device thread does.
 */
import { workerData } from 'node:worker_threads';
import { GuestMemory } from '../hypervisor/guest-memory.ts';
import { PartitionControl } from '../hypervisor/partition-control.ts';
import { PortTable } from '../hypervisor/ports.ts';
import { RootInbox } from '../hypervisor/root-inbox.ts';

const { control, memory, stop, spinIterations, maxSpinIterations } = workerData as {
  control: SharedArrayBuffer;
  memory: WebAssembly.Memory;
  stop: SharedArrayBuffer;
  spinIterations: number;
  maxSpinIterations?: number;
};
const ctl = new PartitionControl(control);
const mem = GuestMemory.attach(memory);
const inbox = new RootInbox(ctl, mem, new PortTable(ctl, mem));
const stopWord = new Int32Array(stop);
inbox.handler = {
  ioRead: (_vp, port) => (port === 0xe0 ? 1 : 0xff),
  ioWrite: () => {},
  ioReadString: (_vp, _port, _size, dst) => {
    dst.fill(1);
  },
  ioWriteString: () => {},
};
inbox.serveBlocking({ spinIterations, maxSpinIterations }, () => Atomics.load(stopWord, 0) === 0);
