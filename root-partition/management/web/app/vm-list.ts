/**
 * The VM list, as Hyper-V Manager's: name, state, heartbeat, CPU usage, assigned memory, uptime,
 * and the actions each VM offers now. Rows change in place as the server pushes changes (a row is
 * rebuilt only when its VM changes, and keeps the keyboard focus), and "New virtual machine"
 * defines a VM from the images the service offers.
 */
import type { WebVm } from '../web-port.ts';
import { actionButtons } from './actions.ts';
import { api, currentSession } from './api.ts';
import { bytes, clear, duration, h } from './dom.ts';
import type { Store } from './store.ts';

export const HEARTBEAT: Record<number, string> = { 2: 'OK', 3: 'Degraded', 12: 'No Contact', 13: 'Lost Communication', 15: 'Paused' };

export function heartbeatText(vm: WebVm): string {
  return vm.heartbeatStatus === null ? '—' : (HEARTBEAT[vm.heartbeatStatus] ?? String(vm.heartbeatStatus));
}

export function vmListView(main: HTMLElement, store: Store, say: (t: string, error?: boolean) => void): () => void {
  const full = currentSession()?.role === 'full';
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'vms' },
    h('caption', {}, 'Virtual machines'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Name', 'State', 'Heartbeat', 'CPU usage', 'Assigned memory', 'Uptime', ...(full ? ['Actions'] : [])].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    body,
  );
  const empty = h('p', { class: 'empty' }, 'No virtual machines yet.');
  clear(main);
  main.append(h('h1', {}, 'Virtual machines'), table, empty);
  if (full) main.append(newVmForm(say));

  const rows = new Map<string, HTMLTableRowElement>();
  const cpu = (id: string) => {
    const s = store.history.get(id);
    return s?.length ? `${s[s.length - 1]!.cpuPercent.toFixed(0)} %` : '—';
  };
  const row = (vm: WebVm & { receivedAt: number }) =>
    h(
      'tr',
      { 'data-vm': vm.id },
      h('th', { scope: 'row' }, h('a', { href: `#/vm/${vm.id}` }, vm.name)),
      h('td', { class: 'state' }, vm.state),
      h('td', { class: 'heartbeat' }, heartbeatText(vm)),
      h('td', { class: 'cpu' }, cpu(vm.id)),
      h('td', {}, bytes(vm.memoryBytes)),
      h('td', { class: 'uptime' }, duration(store.uptime(vm))),
      full ? h('td', {}, actionButtons(vm, say)) : null,
    );
  const put = (id: string) => {
    const vm = store.vms.get(id);
    const old = rows.get(id);
    if (!vm) {
      old?.remove();
      rows.delete(id);
    } else {
      const focused = old?.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.action : undefined;
      const r = row(vm);
      if (old) old.replaceWith(r);
      else body.append(r);
      rows.set(id, r);
      if (focused) (r.querySelector(`[data-action="${focused}"]`) as HTMLElement | null)?.focus();
    }
    empty.hidden = rows.size > 0;
  };
  for (const id of store.vms.keys()) put(id);
  empty.hidden = rows.size > 0;
  const off = store.on((c) => {
    if (c.kind === 'vm' || c.kind === 'removed') put(c.id);
    else if (c.kind === 'counters') {
      const cell = rows.get(c.id)?.querySelector('.cpu');
      if (cell) cell.textContent = cpu(c.id);
    }
  });
  const clock = setInterval(() => {
    for (const [id, r] of rows) {
      const vm = store.vms.get(id);
      const cell = r.querySelector('.uptime');
      if (vm && cell) cell.textContent = duration(store.uptime(vm));
    }
  }, 1000);
  return () => {
    off();
    clearInterval(clock);
  };
}

function newVmForm(say: (t: string, error?: boolean) => void): HTMLElement {
  const name = h('input', { id: 'new-name', name: 'name', required: true, maxlength: '64', pattern: '[A-Za-z0-9][A-Za-z0-9 ._\\-]*' });
  const memory = h('input', { id: 'new-memory', name: 'memory', type: 'number', min: '1', max: '65536', value: '64', required: true });
  const vps = h('input', { id: 'new-vps', name: 'vps', type: 'number', min: '1', max: '64', value: '1', required: true });
  const image = h('select', { id: 'new-image', name: 'image', required: true });
  const cmdline = h('input', { id: 'new-cmdline', name: 'cmdline', value: 'echo', maxlength: '1024' });
  void api.get<{ images: string[] }>('/api/images').then(
    ({ images }) => {
      for (const i of images) image.append(h('option', { value: i, ...(i === 'ref-enlightened.wasm' ? { selected: true } : {}) }, i));
    },
    () => {},
  );
  const field = (label: string, input: HTMLElement, hint?: string) =>
    h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('small', {}, hint) : null);
  const form = h(
    'form',
    { class: 'new-vm', 'aria-labelledby': 'new-vm-title' },
    h('h2', { id: 'new-vm-title' }, 'New virtual machine'),
    field('Name', name),
    field('Memory (MiB)', memory),
    field('Virtual processors', vps),
    field('Guest image', image),
    field('Command line', cmdline, 'the reference guests take "echo" to echo what is typed at their console'),
    h('button', { type: 'submit' }, 'Create'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void api
      .post<WebVm>('/api/vms', { name: name.value, memoryMiB: Number(memory.value), vpCount: Number(vps.value), image: image.value, cmdline: cmdline.value })
      .then(
        (vm) => {
          say(`${vm.name}: created`);
          name.value = '';
        },
        (err: Error) => say(`New VM: ${err.message}`, true),
      );
  });
  return form;
}
