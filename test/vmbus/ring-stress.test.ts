import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { StressArgs, StressResult } from './ring-stress-roles.ts';

const PACKETS = 1_500_000;
const MEMORY_BYTES = 1024 * 1024;

function runWorker(args: StressArgs, workers: Worker[]): Promise<StressResult> {
  const w = new Worker(new URL('./ring-stress-worker.mjs', import.meta.url), { workerData: args });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`${args.role} exited with ${code} before reporting`)));
  });
}

describe('ring stress: producer and consumer threads over one SharedArrayBuffer', () => {
  it(`moves ${PACKETS} packets with no loss, reordering or duplication, and no lost wake-up`, async () => {
    const memory = new WebAssembly.Memory({ initial: MEMORY_BYTES / 65536, maximum: MEMORY_BYTES / 65536, shared: true });
    const base: Omit<StressArgs, 'role'> = {
      memory,
      controlGpa: 0x1000,
      dataSize: 16 * 4096,
      dataBell: 0x100 / 4,
      spaceBell: 0x104 / 4,
      packets: PACKETS,
      spread: 17,
      timeoutMs: 3000,
    };
    // The producer of this ring advertises FEAT_PENDING_SEND_SZ (as Linux does on its rings).
    new Int32Array(memory.buffer)[(0x1000 + 64) / 4] = 1;
    const workers: Worker[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('stress test did not finish within 20 s')), 20_000);
      });
      const [consumer, producer] = await Promise.race([
        Promise.all([runWorker({ ...base, role: 'consumer' }, workers), runWorker({ ...base, role: 'producer' }, workers)]),
        deadline,
      ]);
      expect(producer.error).toBe(null);
      expect(consumer.error).toBe(null);
      expect(producer.packets).toBe(PACKETS);
      expect(consumer.packets).toBe(PACKETS);
      expect(producer.lostWakeups + consumer.lostWakeups).toBe(0);
      // Suppression: far fewer signals than packets in both directions.
      expect(producer.signals).toBeLessThan(PACKETS / 100);
      expect(consumer.signals).toBeLessThan(PACKETS / 100);
      console.log(
        `ring stress: producer ${producer.signals} signals / ${producer.sleeps} sleeps, consumer ${consumer.signals} signals / ${consumer.sleeps} sleeps`,
      );
    } finally {
      clearTimeout(timer);
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
