/**
 * The I/O benchmark's report (`tsvisor bench io`): MB/s per workload and storage path, emulated
 * against synthetic, as bars on a log scale (the paths differ by orders of magnitude), with a
 * link to the full HTML report the benchmark writes.
 */
import { api } from './api.ts';
import { clear, h } from './dom.ts';

interface Row { workloadLabel: string; pathLabel: string; kind: string; mbPerS: number; iops: number; perIo: { exits: number } }
interface Report { startedAt: string; quick: boolean; machine: { cpuModel: string; cores: number }; rows: Row[] }

export function benchView(main: HTMLElement): () => void {
  clear(main);
  main.append(h('h1', {}, 'I/O benchmark'), h('p', {}, 'Loading…'));
  void api.get<Report>('/api/bench').then((r) => {
    clear(main);
    const max = Math.max(...r.rows.map((x) => x.mbPerS), 1);
    const min = Math.min(...r.rows.map((x) => x.mbPerS).filter((v) => v > 0), max);
    const lo = Math.floor(Math.log10(min)), hi = Math.ceil(Math.log10(max));
    const width = (v: number) => `${Math.max(1, (100 * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / Math.max(1, hi - lo)).toFixed(1)}%`;
    const workloads = [...new Set(r.rows.map((x) => x.workloadLabel))];
    main.append(h('h1', {}, 'I/O benchmark'),
      h('p', {}, `Run of ${r.startedAt}${r.quick ? ' (quick)' : ''} on ${r.machine.cpuModel}, ${r.machine.cores} cores. `, h('a', { href: '/api/bench.html', target: '_blank', rel: 'noopener' }, 'Full report')),
      ...workloads.map((w) => h('section', { class: 'bench' }, h('h2', {}, w),
        h('table', {}, h('caption', {}, `${w}: MB/s (log scale)`),
          h('thead', {}, h('tr', {}, ...['Path', 'MB/s', 'IOPS', 'Exits per I/O'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...r.rows.filter((x) => x.workloadLabel === w).map((x) => h('tr', {},
            h('th', { scope: 'row' }, x.pathLabel),
            h('td', {}, h('span', { class: `bar ${x.kind}`, style: `width:${width(x.mbPerS)}` }), ` ${x.mbPerS.toFixed(1)}`),
            h('td', {}, x.iops.toFixed(0)), h('td', {}, x.perIo.exits.toFixed(1)))))))));
  }, (e: Error) => { clear(main); main.append(h('h1', {}, 'I/O benchmark'), h('p', {}, e.message)); });
  return () => {};
}
