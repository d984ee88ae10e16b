// Worker bootstrap for a storvsp queue thread (the tsx loader is not inherited by workers on Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./storvsp-queue-thread-main.ts');
