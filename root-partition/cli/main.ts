/** The tsvisor command line: parse, run, and report a failure in words (or JSON under --json). */
import { buildProgram } from './program.ts';
import { reportFailure, wantsJson } from './management-session.ts';

buildProgram()
  .parseAsync()
  .catch((e: Error & { code?: string; exitCode?: number }) => {
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // Help and version end with 0; a usage error was printed by commander (words) unless --json.
      if (e.exitCode === 0) return;
      if (wantsJson()) console.log(JSON.stringify({ error: { message: e.message.replace(/^error: /, ''), code: 'usage' } }));
      process.exitCode = e.exitCode ?? 1;
      return;
    }
    reportFailure(e);
  });
