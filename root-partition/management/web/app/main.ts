/**
 * The web console's single-page app: the session, the routes (#/, #/vm/<id>, #/vm/<id>/console,
 * #/bench) and the event stream every view reads from. Bundled by scripts/build-web.ts.
 */
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { currentSession, logout, resumeSession } from './api.ts';
import { benchView } from './bench-view.ts';
import { consoleView } from './console-view.ts';
import { clear, h } from './dom.ts';
import { loginView } from './login.ts';
import { Store } from './store.ts';
import { vmListView } from './vm-list.ts';
import { vmPageView } from './vm-page.ts';

const main = document.getElementById('main')!;
const who = document.getElementById('who')!;
const status = document.getElementById('status')!;
const store = new Store();
let leave: () => void = () => {};

function say(text: string, error = false): void {
  status.textContent = text;
  status.className = error ? 'status error' : 'status';
}

store.on((c) => {
  if (c.kind === 'connection' && !c.open) {
    // The stream drops when the session ends (401) as well as when the network does.
    void resumeSession().then((s) => {
      if (!s) route();
    });
  }
});

function route(): void {
  leave();
  leave = () => {};
  const s = currentSession();
  clear(who);
  if (!s) {
    store.disconnect();
    leave = loginView(main, () => route());
    return;
  }
  who.append(`${s.user} (${s.role})`, ' ', h('button', { type: 'button', onclick: () => void logout().then(route) }, 'Log out'));
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'vm' && parts[1] && parts[2] === 'console') {
    leave = consoleView(main, store, parts[1], say);
  } else {
    store.connect(null);
    if (parts[0] === 'vm' && parts[1]) leave = vmPageView(main, store, parts[1], say);
    else if (parts[0] === 'bench') leave = benchView(main, store, say);
    else leave = vmListView(main, store, say);
  }
}

window.addEventListener('hashchange', route);
void resumeSession().then(route);
