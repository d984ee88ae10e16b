/** The login form: a user of the service's access list (`tsvisor user add`) and its password. */
import { login } from './api.ts';
import { clear, h } from './dom.ts';

export function loginView(main: HTMLElement, done: () => void): () => void {
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  const button = h('button', { type: 'submit' }, 'Log in');
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to tsvisor'),
    h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'User name'), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    error,
    button,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = '';
    login(user.value, password.value).then(done, (err: Error) => {
      error.textContent = err.message === 'wrong user name or password' ? 'Wrong user name or password.' : `Login refused: ${err.message}`;
      button.disabled = false;
      password.select();
    });
  });
  clear(main);
  main.append(form);
  user.focus();
  return () => {};
}
