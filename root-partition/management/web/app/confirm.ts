/**
 * Confirmation before the actions Hyper-V Manager asks about (turn off, shut down, reset, delete):
 * a modal <dialog>, so focus stays in it, Escape cancels, and the safe button has the focus.
 */
import { h } from './dom.ts';

export function confirmAction(title: string, text: string, yes: string): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, yes);
    const d = h(
      'dialog',
      { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-text' }, text),
      h('div', { class: 'buttons' }, cancel, ok),
    );
    const done = (v: boolean) => {
      d.close();
      d.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    d.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}
