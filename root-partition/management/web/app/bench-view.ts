/**
 * The I/O benchmark's report (`tsvisor bench io`): MB/s per workload and storage path, emulated
 * against synthetic, as bars on a log scale (the paths differ by orders of magnitude), with a
 * link to the full HTML report the benchmark writes; and, for the `full` role, a button that runs
 * the quick benchmark on the host, its progress pushed step by step, the report shown when done.
 */
import type { BenchStatus } from '../web-port.ts';
import { api, currentSession } from './api.ts';
import { clear, h } from './dom.ts';
import type { Store } from './store.ts';

interface Row {
  workloadLabel: string;
  pathLabel: string;
  kind: string;
  mbPerS: number;
  iops: number;
  perIo: { exits: number };
}
interface Report {
  startedAt: string;
  quick: boolean;
  machine: { cpuModel: string; cores: number };
  rows: Row[];
}

function reportView(r: Report): HTMLElement[] {
  const max = Math.max(...r.rows.map((x) => x.mbPerS), 1);
  const min = Math.min(...r.rows.map((x) => x.mbPerS).filter((v) => v > 0), max);
  const lo = Math.floor(Math.log10(min)),
    hi = Math.ceil(Math.log10(max));
  const width = (v: number) => `${Math.max(1, (100 * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / Math.max(1, hi - lo)).toFixed(1)}%`;
  const workloads = [...new Set(r.rows.map((x) => x.workloadLabel))];
  return [
    h(
      'p',
      {},
      `Run of ${r.startedAt}${r.quick ? ' (quick)' : ''} on ${r.machine.cpuModel}, ${r.machine.cores} cores. `,
      h('a', { href: '/api/bench.html', target: '_blank', rel: 'noopener' }, 'Full report'),
    ),
    ...workloads.map((w) =>
      h(
        'section',
        { class: 'bench' },
        h(
          'table',
          {},
          h('caption', {}, `${w}: MB/s (log scale)`),
          h('thead', {}, h('tr', {}, ...['Path', 'MB/s', 'IOPS', 'Exits per I/O'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            ...r.rows
              .filter((x) => x.workloadLabel === w)
              .map((x) =>
                h(
                  'tr',
                  {},
                  h('th', { scope: 'row' }, x.pathLabel),
                  h('td', {}, h('span', { class: `bar ${x.kind}`, style: `width:${width(x.mbPerS)}` }), ` ${x.mbPerS.toFixed(1)}`),
                  h('td', {}, x.iops.toFixed(0)),
                  h('td', {}, x.perIo.exits.toFixed(1)),
                ),
              ),
          ),
        ),
      ),
    ),
  ];
}

export function benchView(main: HTMLElement, store: Store, say: (t: string, error?: boolean) => void): () => void {
  const full = currentSession()?.role === 'full';
  const report = h('div', {}, h('p', {}, 'Loading…'));
  const progress = h('progress', { max: '1', value: '0', 'aria-label': 'Benchmark progress' });
  const step = h('span', { 'aria-live': 'polite' });
  const run = h(
    'button',
    { type: 'button', onclick: () => void api.post('/api/bench/run', {}).catch((e: Error) => say(e.message, true)) },
    'Run the quick benchmark',
  );
  clear(main);
  main.append(h('h1', {}, 'I/O benchmark'));
  if (full) main.append(h('p', { class: 'bench-run' }, run, ' ', progress, ' ', step));
  main.append(report);
  const load = () =>
    api.get<Report>('/api/bench').then(
      (r) => {
        clear(report);
        report.append(...reportView(r));
      },
      (e: Error) => {
        clear(report);
        report.append(h('p', {}, e.message));
      },
    );
  let wasRunning = false;
  const show = (s: BenchStatus | null) => {
    if (!s) return;
    run.disabled = s.running;
    progress.max = Math.max(1, s.total);
    progress.value = s.running ? s.done : s.finishedAt && !s.error ? progress.max : 0;
    step.textContent = s.running ? `${s.done}/${s.total}: ${s.step}` : s.error ? `failed: ${s.error}` : s.finishedAt ? `finished ${s.finishedAt}` : '';
    if (wasRunning && !s.running && !s.error) void load();
    wasRunning = s.running;
  };
  void load();
  show(store.bench);
  const off = store.on((c) => {
    if (c.kind === 'bench') show(store.bench);
  });
  return off;
}
