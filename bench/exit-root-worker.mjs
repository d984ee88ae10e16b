import { register } from 'tsx/esm/api';

register();
await import('./exit-root.ts');
