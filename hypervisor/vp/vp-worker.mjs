// Worker bootstrap for a VP thread: worker threads do not inherit tsx's loader hook on Node 20,
// so register it here, then run the TypeScript VP thread.
import { register } from 'tsx/esm/api';

register();
await import('./vp-thread.ts');
