import { readFileSync } from 'node:fs';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { Partition, PartitionConfig } from '../../hypervisor/partition.ts';
import type { InterceptHandler } from '../../hypervisor/root-inbox.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

/** A booted test partition whose COM1 output is captured, served from this thread's event loop. */
export interface TestGuest {
  hv: Hypervisor;
  partition: Partition;
  console(): string;
  /** key=value lines printed by the probe guest. */
  values(): Record<string, number>;
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function bootTestGuest(
  image: string,
  cmdline = '',
  opts: { config?: Partial<PartitionConfig>; hv?: Hypervisor; handler?: Partial<InterceptHandler>; beforeStart?: (p: Partition) => void } = {},
): Promise<TestGuest> {
  await buildGuests([image]);
  const hv = opts.hv ?? new Hypervisor();
  const partition = hv.createPartition({ memoryBytes: 16 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 }, ...opts.config });
  partition.initialize();
  partition.loadImage(readFileSync(guestImagePath(image)), cmdline);
  let out = '';
  const waiters: (() => void)[] = [];
  const append = (s: string) => {
    out += s;
    for (const w of waiters.splice(0)) w();
  };
  partition.inbox.handler = {
    ioRead: (_vp, port) => (port === 0x3fd ? 0x60 : 0xff),
    ioWrite: (_vp, port, _size, v) => {
      if (port === 0x3f8) append(String.fromCharCode(v & 0xff));
    },
    ioReadString: (_vp, _port, _size, dst) => {
      dst.fill(0xff);
    },
    ioWriteString: (_vp, port, _size, src) => {
      if (port === 0x3f8) append(Buffer.from(src).toString('latin1'));
    },
    ...opts.handler,
  };
  const ac = new AbortController();
  const serving = partition.inbox.serveAsync(ac.signal);
  opts.beforeStart?.(partition);
  partition.start();
  const waitFor = (text: string, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(text)}; console so far:\n${out}`)), timeoutMs);
      const check = () => {
        if (out.includes(text)) {
          clearTimeout(t);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return {
    hv,
    partition,
    console: () => out,
    values: () =>
      Object.fromEntries(
        out
          .split('\n')
          .filter((l) => /^\w+=\d+$/.test(l))
          .map((l) => [l.split('=')[0], Number(l.split('=')[1])]),
      ),
    waitFor,
    dispose: async () => {
      await partition.stop();
      ac.abort();
      await serving;
      if (!opts.hv) await hv.shutdown();
    },
  };
}
