/**
 * One VM's page: its summary, actions, live charts (CPU, exits/s, I/O/s, signals/s over the last
 * minute), settings, disks and controllers, integration services, KVP items and jobs with their
 * progress. The record comes pushed; the page re-reads the details (devices, KVP) when the VM
 * changes, as the push says it did.
 */
import type { WebJob, WebVmDetail } from '../web-port.ts';
import { actionButtons } from './actions.ts';
import { api, currentSession } from './api.ts';
import { sparkline } from './chart.ts';
import { bytes, clear, duration, h, rate } from './dom.ts';
import type { Store } from './store.ts';
import { heartbeatText } from './vm-list.ts';

const JOB_STATE: Record<number, string> = { 2: 'New', 3: 'Starting', 4: 'Running', 7: 'Completed', 8: 'Terminated', 9: 'Killed', 10: 'Exception' };

function table(caption: string, header: string[], rows: (string | Node)[][]): HTMLElement {
  if (rows.length === 0) return h('section', {}, h('h2', {}, caption), h('p', { class: 'empty' }, 'None.'));
  return h(
    'section',
    {},
    h(
      'table',
      {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, ...header.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
    ),
  );
}

function deviceRows(d: WebVmDetail): string[][] {
  const out: string[][] = [];
  for (const e of d.devices) {
    if (e.kind === 'ide-disk')
      out.push([`IDE controller ${Number(e.controller ?? 0)}`, `position ${Number(e.position ?? 0)}`, String(e.path), e.readOnly ? 'read-only' : 'read/write']);
    else if (e.kind === 'scsi-controller') {
      const disks = (e.disks as { location: number; path: string; readOnly?: boolean }[]) ?? [];
      out.push(['SCSI controller', String(e.instanceId ?? '(derived)'), `${disks.length} disk${disks.length === 1 ? '' : 's'}`, '']);
      for (const k of disks) out.push(['  SCSI disk', `location ${k.location}`, k.path, k.readOnly ? 'read-only' : 'read/write']);
    }
  }
  return out;
}

/**
 * Set-VM from the page: memory, VPs and command line change only while the VM is Off (the
 * service refuses otherwise and the page says why); notes change in any state.
 */
function settingsForm(d: WebVmDetail, say: (t: string, error?: boolean) => void, saved: () => void): HTMLElement {
  const off = d.state === 'Off';
  const memory = h('input', {
    id: 'set-memory',
    type: 'number',
    min: '1',
    max: '65536',
    value: String(d.memoryBytes / (1024 * 1024)),
    required: true,
    disabled: !off,
  });
  const vps = h('input', { id: 'set-vps', type: 'number', min: '1', max: '64', value: String(d.vpCount), required: true, disabled: !off });
  const cmdline = h('input', { id: 'set-cmdline', maxlength: '1024', value: d.cmdline, disabled: !off });
  const notes = h('textarea', { id: 'set-notes', maxlength: '4096', rows: '2' }, d.notes);
  const field = (label: string, input: HTMLElement) => h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
  const form = h(
    'form',
    { class: 'settings', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'Edit settings'),
    off ? null : h('p', {}, 'Memory, virtual processors and the command line change only while the VM is off; notes change any time.'),
    field('Memory (MiB)', memory),
    field('Virtual processors', vps),
    field('Command line', cmdline),
    field('Notes', notes),
    h('button', { type: 'submit' }, 'Apply'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const change = off ? { memoryMiB: Number(memory.value), vpCount: Number(vps.value), cmdline: cmdline.value, notes: notes.value } : { notes: notes.value };
    void api.post(`/api/vms/${d.id}/settings`, change).then(
      () => {
        say(`${d.name}: settings applied`);
        saved();
      },
      (err: Error) => say(`Settings: ${err.message}`, true),
    );
  });
  return form;
}

export function vmPageView(main: HTMLElement, store: Store, id: string, say: (t: string, error?: boolean) => void): () => void {
  const full = currentSession()?.role === 'full';
  let detail: WebVmDetail | null = null;
  const summary = h('dl', { class: 'summary' });
  const actions = h('div');
  const charts = h('div', { class: 'charts', role: 'group', 'aria-label': 'Performance over the last minute' });
  const details = h('div');
  const jobs = h('div');
  const title = h('h1', {}, 'Virtual machine');
  clear(main);
  main.append(
    h('p', {}, h('a', { href: '#/' }, '← All virtual machines')),
    title,
    summary,
    h('p', {}, h('a', { href: `#/vm/${id}/console`, class: 'button' }, 'Connect to the console')),
    actions,
    charts,
    details,
    jobs,
  );

  const drawSummary = () => {
    const vm = store.vms.get(id);
    if (!vm) {
      clear(summary);
      summary.append(h('dt', {}, 'State'), h('dd', {}, 'deleted'));
      clear(actions);
      return;
    }
    title.textContent = vm.name;
    clear(summary);
    const item = (k: string, v: string, cls = '') => [h('dt', {}, k), h('dd', cls ? { class: cls } : {}, v)];
    summary.append(
      ...item('State', vm.state, 'state'),
      ...item('Heartbeat', heartbeatText(vm), 'heartbeat'),
      ...item('Uptime', duration(store.uptime(vm)), 'uptime'),
      ...item('Assigned memory', bytes(vm.memoryBytes)),
      ...item('Virtual processors', String(vm.vpCount)),
      ...(vm.lastError ? item('Last error', vm.lastError) : []),
    );
    clear(actions);
    if (full) actions.append(actionButtons(vm, say));
  };
  const drawCharts = () => {
    const s = store.history.get(id) ?? [];
    clear(charts);
    charts.append(
      sparkline(
        'CPU',
        s.map((x) => x.cpuPercent),
        (v) => `${v.toFixed(0)} %`,
        100,
      ),
      sparkline(
        'Exits/s',
        s.map((x) => x.exitsPerSecond),
        rate,
      ),
      sparkline(
        'I/O/s',
        s.map((x) => x.ioPerSecond),
        rate,
      ),
      sparkline(
        'Signals/s',
        s.map((x) => x.signalsPerSecond),
        rate,
      ),
    );
  };
  const drawJobs = () => {
    const list = [...store.jobs.values()].filter((j: WebJob) => j.vmId === id);
    clear(jobs);
    jobs.append(
      table(
        'Jobs',
        ['Job', 'State', 'Progress', 'Error'],
        list.map((j) => [
          j.description,
          JOB_STATE[j.jobState] ?? String(j.jobState),
          h('progress', { max: '100', value: String(j.percentComplete), 'aria-label': `${j.description}: ${j.percentComplete} %` }),
          j.errorDescription ?? '',
        ]),
      ),
    );
  };
  const drawDetails = () => {
    clear(details);
    if (!detail) return;
    const d = detail;
    details.append(
      table(
        'Settings',
        ['Setting', 'Value'],
        [
          ['Guest image', d.image],
          ['Command line', d.cmdline || '(none)'],
          ['Automatic stop action', d.automaticStopAction],
          ['Memory', bytes(d.memoryBytes)],
          ['Virtual processors', String(d.vpCount)],
          ['Notes', d.notes || '(none)'],
        ],
      ),
      full ? settingsForm(d, say, () => void load()) : '',
      table('Disks and controllers', ['Controller', 'Where', 'Disk', 'Access'], deviceRows(d)),
      table(
        'Integration services',
        ['Service', 'Enabled', 'Status'],
        d.integrationServices.map((s) => [s.name, s.enabled ? 'yes' : 'no', s.status]),
      ),
      table(
        'Key-value pairs (guest)',
        ['Name', 'Data'],
        [...(d.kvpGuestItems ?? []), ...(d.kvpIntrinsicItems ?? [])].map(([k, v]) => [k, v]),
      ),
    );
  };
  const load = () =>
    api.get<WebVmDetail>(`/api/vms/${id}`).then(
      (d) => {
        detail = d;
        drawDetails();
      },
      (e: Error) => say(e.message, true),
    );
  drawSummary();
  drawCharts();
  drawJobs();
  void load();
  const off = store.on((c) => {
    if ((c.kind === 'vm' || c.kind === 'removed') && c.id === id) {
      drawSummary();
      void load();
    } else if (c.kind === 'counters' && c.id === id) drawCharts();
    else if (c.kind === 'job') drawJobs();
  });
  const clock = setInterval(() => {
    const vm = store.vms.get(id);
    const el = summary.querySelector('.uptime');
    if (vm && el) el.textContent = duration(store.uptime(vm));
  }, 1000);
  return () => {
    off();
    clearInterval(clock);
  };
}
