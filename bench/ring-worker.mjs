// Worker bootstrap for bench/ring.ts: Node 20 workers do not inherit the tsx hook, so register
// it here. Each message is one run of the role this worker was started with.
import { register } from 'tsx/esm/api';
import { parentPort, workerData } from 'node:worker_threads';

register();
const roles = await import('./ring-roles.ts');
const side = workerData.role === 'producer' ? roles.produce : roles.consume;
parentPort.on('message', (run) => parentPort.postMessage(side(run)));
parentPort.postMessage('ready');
