// Worker bootstrap for the two-thread ring stress test: Node 20 workers do not inherit the tsx
// hook through execArgv, so register it here, then run the requested role.
import { register } from 'tsx/esm/api';
import { parentPort, workerData } from 'node:worker_threads';

register();
const roles = await import('./ring-stress-roles.ts');
const result = workerData.role === 'producer' ? roles.runProducer(workerData) : roles.runConsumer(workerData);
parentPort.postMessage(result);
