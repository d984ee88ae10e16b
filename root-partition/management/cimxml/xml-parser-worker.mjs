// Worker bootstrap for the CIM-XML parser thread (the tsx loader is not inherited by workers on Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./xml-parser-main.ts');
