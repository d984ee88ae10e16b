/**
 * The single-page app's files, as `npm run build` (scripts/build-web.ts) leaves them in
 * `build/web/`: read once at start and served from memory, so no request names a file on disk.
 * They hold no data and are the same for everyone, so they are served before login (the login
 * form is part of the app); everything under /api/ is authenticated.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

const FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};

const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** The package's `build/web/` (found by its package.json, so it works from the sources and from a bundle). */
export function packageWebDir(from = import.meta.dirname): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'tsvisor') return join(dir, 'build', 'web');
    } catch {
      /* not here */
    }
    if (dirname(dir) === dir) return null;
  }
}

/** The app's files by URL path; throws with what to run when the app was never built. */
export function loadStaticFiles(dir = packageWebDir()): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  for (const [url, name] of Object.entries(FILES)) {
    let body: Buffer;
    try {
      body = readFileSync(join(dir ?? '', name));
    } catch {
      throw new Error(`the web console's ${name} is missing from ${dir ?? 'build/web'}: run \`npm run build\``);
    }
    out.set(url, { type: TYPES[name.slice(name.lastIndexOf('.') + 1)]!, body });
  }
  return out;
}
