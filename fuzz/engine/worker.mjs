// Fuzz worker bootstrap: worker threads do not inherit tsx's loader hook on Node 20, so register
// it here, then run the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
