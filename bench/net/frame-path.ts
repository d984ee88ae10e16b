/**
 * The same-run limit of `bench net`: how fast frames can cross between processes on this machine,
 * without any VM.
 *  - "process → process": one process floods frames over a Unix socket to another, which splits
 *    the records and counts them: the IPC limit of the frame path, with the same framing and
 *    batching as the switch link (root-partition/vswitch/frame-stream.ts).
 *  - "via switch": the same two processes as two ports of a SwitchServer in this process (the
 *    place VMMS would hold it): every frame is decoded, learned, forwarded and re-batched here.
 * At 64 B, 1514 B and 9014 B (jumbo, ports with MTU 9000) frames.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwitchServer } from '../../root-partition/vswitch/switch-server.ts';

export interface NetBenchRow {
  path: 'process → process' | 'via switch';
  frameBytes: number;
  frames: number;
  framesPerSecond: number;
  mbitPerSecond: number;
  /** Frames the switch dropped as `full` (the receiver fell behind); 0 for the direct path. */
  dropped: number;
}

const PEER = new URL('../net-peer.mjs', import.meta.url).pathname;

function peer(args: string[]): { done: Promise<{ ns: number }>; kill: () => void } {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ ns: number }>((resolve, reject) => {
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1);
      // A peer this bench killed once it was no longer needed ends without a line: not an error.
      if (!line) code === null ? resolve({ ns: -1 }) : reject(new Error(`peer ${args[1]} exited with ${code}`));
      else resolve(JSON.parse(line));
    });
  });
  return { done, kill: () => child.kill('SIGKILL') };
}

async function direct(dir: string, size: number, n: number): Promise<NetBenchRow> {
  const path = join(dir, `direct-${size}.sock`);
  // This process only relays the socket pair: the receiver listens through a tiny server here
  // that pipes one connection into the other, so both ends are other processes.
  let first: net.Socket | undefined;
  const server = net.createServer((s) => {
    if (!first) first = s;
    else {
      first.pipe(s);
      s.pipe(first);
    }
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  const rx = peer([path, 'receive', String(n), String(size), '-']);
  await new Promise((r) => setTimeout(r, 200));
  const tx = peer([path, 'send', String(n), String(size), '-']);
  const { ns } = (await rx.done) as { ns: number };
  tx.kill();
  server.close();
  return row('process → process', size, n, ns, 0);
}

async function viaSwitch(dir: string, size: number, n: number): Promise<NetBenchRow> {
  const server = await SwitchServer.listen(join(dir, `sw-${size}.sock`), { name: 'bench' });
  const A = '00:15:5d:00:00:0a';
  const B = '00:15:5d:00:00:0b';
  const hello = (mac: string) => JSON.stringify({ kind: 'synthetic', mac, mtu: size > 1514 ? 9000 : 1500 });
  const rx = peer([server.path, 'receive', String(n), String(size), hello(B)]);
  await new Promise((r) => setTimeout(r, 300));
  // B must be known before the flood, or the first frames are flooded to nobody but B anyway.
  const tx = peer([server.path, 'send', String(n), String(size), hello(A), B, A]);
  const port = () => server.switch.allPorts().find((p) => p.mac === B);
  let dropped = 0;
  const stats = setInterval(() => (dropped = port()?.counters.drops.full ?? dropped), 100);
  const result = (await rx.done) as { ns: number; got: number };
  clearInterval(stats);
  tx.kill();
  await server.close();
  // Frames/s counts what arrived: frames the switch dropped for the slow receiver do not count.
  return row('via switch', size, result.got, result.ns, dropped);
}

function row(path: NetBenchRow['path'], size: number, n: number, ns: number, dropped: number): NetBenchRow {
  const s = ns / 1e9;
  return { path, frameBytes: size, frames: n, framesPerSecond: ns > 0 ? n / s : 0, mbitPerSecond: ns > 0 ? (n * size * 8) / s / 1e6 : 0, dropped };
}

export async function measureFramePath(frames: number): Promise<NetBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvisor-bench-net-'));
  const rows: NetBenchRow[] = [];
  try {
    for (const size of [64, 1514, 9014]) {
      const n = frames;
      rows.push(await direct(dir, size, n));
      rows.push(await viaSwitch(dir, size, n));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
