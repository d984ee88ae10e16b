// Worker bootstrap for a VM's device thread (the tsx loader is not inherited by workers on Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./device-thread-main.ts');
