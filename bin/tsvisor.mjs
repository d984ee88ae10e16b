#!/usr/bin/env node
// Entry point of the tsvisor command: load TypeScript through tsx, then the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../root-partition/cli/main.ts');
