/**
 * The guest's serial console (COM1) in the browser, with xterm.js: the output VMMS holds, then
 * what the guest writes, pushed as it comes; keys typed go to COM1 in order, one request at a
 * time (what is typed meanwhile goes in the next). The guest ends lines with LF alone, as a
 * serial console does; the terminal adds the carriage return. Scrollback is the terminal's. "Detach" (or
 * Ctrl-], as `tsvisor vm console`) leaves the VM running. Output the server had to drop for a
 * slow browser is marked where it was lost.
 */
import { Terminal } from '@xterm/xterm';
import { api, currentSession } from './api.ts';
import { clear, h } from './dom.ts';
import type { Store } from './store.ts';

const DETACH = '\x1d';

export function consoleView(main: HTMLElement, store: Store, id: string, say: (t: string, error?: boolean) => void): () => void {
  const full = currentSession()?.role === 'full';
  const vm = store.vms.get(id);
  const title = h('h1', {}, `${vm?.name ?? 'VM'} — console`);
  const box = h('div', { class: 'terminal', role: 'region', 'aria-label': `Serial console of ${vm?.name ?? id}` });
  const detach = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        location.hash = `#/vm/${id}`;
      },
    },
    'Detach',
  );
  const state = h('span', { class: 'state', 'aria-live': 'polite' }, vm?.state ?? '');
  clear(main);
  main.append(title, h('p', { class: 'console-bar' }, detach, ' ', state, full ? ' — Ctrl-] detaches too' : ' — read-only: output only'), box);

  const term = new Terminal({ scrollback: 5000, convertEol: true, disableStdin: !full, cursorBlink: full, fontSize: 14, screenReaderMode: false });
  term.open(box);
  const textarea = box.querySelector('textarea');
  textarea?.setAttribute('aria-label', `Type into the console of ${vm?.name ?? id}`);
  let pending = '';
  let sending = false;
  const flush = async () => {
    if (sending || !pending) return;
    sending = true;
    const data = pending.slice(0, 1024);
    pending = pending.slice(data.length);
    try {
      await api.post(`/api/vms/${id}/console`, { data });
    } catch (e) {
      say(`console: ${(e as Error).message}`, true);
      pending = '';
    }
    sending = false;
    void flush();
  };
  const input = term.onData((d) => {
    const at = d.indexOf(DETACH);
    if (at >= 0) {
      location.hash = `#/vm/${id}`;
      return;
    }
    if (!full) return;
    pending += d;
    void flush();
  });
  store.connect(id, {
    write: (b) => term.write(b),
    dropped: (n) => term.write(`\r\n\x1b[7m[output dropped: ${n} bytes]\x1b[0m\r\n`),
  });
  const off = store.on((c) => {
    if (c.kind === 'vm' && c.id === id) state.textContent = store.vms.get(id)?.state ?? '';
  });
  term.focus();
  return () => {
    off();
    input.dispose();
    term.dispose();
    store.connect(null);
  };
}
