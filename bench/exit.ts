/**
 * Exit round-trip benchmark: a guest performs N port reads and N string reads (one exit each)
 * against a root device thread, with the adaptive wait (spin, then sleep) and with a plain
 * blocking wait on both sides, in one run. Reports µs per exit and exits per second, with the
 * wait counters that explain them.
 * Usage: npx tsx bench/exit.ts [--quick] [--json FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { defaultWaitPolicy } from '../hypervisor/adaptive-wait.ts';
import { Hypervisor } from '../hypervisor/hypervisor.ts';
import { buildGuests, guestImagePath } from '../scripts/build-guests.ts';

export interface ExitBenchRow {
  policy: string;
  spinIterations: number;
  kind: 'port read' | 'string read 512 B';
  exits: number;
  usPerExit: number;
  exitsPerSecond: number;
  vpSleepsPerExit: number;
}

async function runOnce(spinIterations: number, n: number): Promise<ExitBenchRow[]> {
  await buildGuests(['exitloop']);
  // The spinning row adapts as the VMs' waits do (TSVISOR_SPIN_MAX; 0 = fixed); blocking stays blocking.
  const maxSpinIterations = spinIterations > 0 ? (defaultWaitPolicy().maxSpinIterations ?? 0) : 0;
  const hv = new Hypervisor();
  const p = hv.createPartition({ memoryBytes: 16 << 20, vpCount: 1, waitPolicy: { spinIterations, maxSpinIterations } });
  p.initialize();
  p.loadImage(readFileSync(guestImagePath('exitloop')), String(n));
  const stop = new SharedArrayBuffer(4);
  const root = new Worker(new URL('./exit-root-worker.mjs', import.meta.url), {
    workerData: { control: p.ctl.sab, memory: p.mem.memory, stop, spinIterations, maxSpinIterations },
  });
  await new Promise((r) => setTimeout(r, 300)); // let the root thread load
  p.start();
  await p.whenIdle();
  const c = p.counters(0);
  Atomics.store(new Int32Array(stop), 0, 1);
  p.inbox.kick();
  await root.terminate();
  // The guest timed its two phases with the reference counter (100 ns) and left the times here.
  const t0 = Number(p.mem.readU64(0x3000)) / 1e4,
    t1 = Number(p.mem.readU64(0x3008)) / 1e4,
    t2 = Number(p.mem.readU64(0x3010)) / 1e4;
  const sum = p.mem.readU32(0x3018);
  await hv.shutdown();
  if (sum !== (n + n * 0x01010101) >>> 0 || p.vpExit(0)?.reason !== 'halted')
    throw new Error(`exit benchmark guest failed: ${JSON.stringify(p.vpExit(0))}, sum ${sum}`);
  const policy =
    spinIterations === 0 ? 'blocking wait' : `adaptive (spin ${spinIterations}${maxSpinIterations > spinIterations ? `–${maxSpinIterations}` : ''})`;
  const sleeps = c.WaitSleeps / Math.max(1, c.Exits);
  return [
    { policy, spinIterations, kind: 'port read', exits: n, usPerExit: ((t1 - t0) * 1000) / n, exitsPerSecond: n / ((t1 - t0) / 1000), vpSleepsPerExit: sleeps },
    {
      policy,
      spinIterations,
      kind: 'string read 512 B',
      exits: n,
      usPerExit: ((t2 - t1) * 1000) / n,
      exitsPerSecond: n / ((t2 - t1) / 1000),
      vpSleepsPerExit: sleeps,
    },
  ];
}

export async function runExitBench(opts: { quick?: boolean } = {}): Promise<ExitBenchRow[]> {
  const n = opts.quick ? 20_000 : 200_000;
  return [...(await runOnce(2000, n)), ...(await runOnce(0, Math.min(n, 5000)))];
}

export function formatExitBench(rows: ExitBenchRow[]): string {
  const lines = [
    "exit round trip, guest VP thread ↔ root device thread (times from the guest's reference counter)",
    'policy                  kind                 exits     µs/exit    exits/s   VP sleeps/exit',
  ];
  for (const r of rows) {
    lines.push(
      `${r.policy.padEnd(22)}  ${r.kind.padEnd(18)} ${String(r.exits).padStart(7)}  ${r.usPerExit.toFixed(3).padStart(10)}  ${Math.round(r.exitsPerSecond).toString().padStart(9)}  ${r.vpSleepsPerExit.toFixed(3).padStart(14)}`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const rows = await runExitBench({ quick: args.includes('--quick') });
  console.log(formatExitBench(rows));
  const j = args.indexOf('--json');
  const json = JSON.stringify(rows, null, 2);
  if (j >= 0) writeFileSync(args[j + 1], json + '\n');
  else console.log(json);
}
