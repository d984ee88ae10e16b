// Worker bootstrap for an x86 VM's VP thread (the tsx loader is not inherited by workers on Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./x86-vp-thread.ts');
