import { GuestMemory } from '../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing } from '../vmbus/ring/index.ts';

/**
 * The producer and consumer loops of the ring benchmark (bench/ring.ts), one per worker thread.
 * Waiting is adaptive: poll the peer's index for up to `spinMicros`, then fall back to
 * the ring protocol's sleep (consumer: unmask + re-check + wait on its doorbell; producer:
 * pending_send_sz + re-check + wait), so signals happen only when a side really sleeps.
 */
export interface RingBenchRun {
  memory: WebAssembly.Memory;
  controlGpa: number;
  dataSize: number;
  /** Int32 word indices in the shared memory. */
  dataBell: number;
  spaceBell: number;
  readyWord: number;
  payloadBytes: number;
  packets: number;
  /** Spin budget in microseconds before sleeping (polling the peer's index; 0 = sleep at once). */
  spinMicros: number;
  /** Packets per batch (one index publication per batch), and a byte cap so large packets keep the peer busy. */
  batch: number;
  batchBytes: number;
}

export interface RingSideStats {
  role: 'producer' | 'consumer';
  signals: number;
  sleeps: number;
  spinHits: number;
  seconds: number;
  error: string | null;
}

const SLEEP_TIMEOUT_MS = 5000;

function open(run: RingBenchRun): { i32: Int32Array; ring: VmbusRing } {
  const mem = GuestMemory.attach(run.memory);
  const ring = VmbusRing.create(mem, run.controlGpa, run.dataSize);
  if (!(ring instanceof VmbusRing)) throw new Error(ring.reason);
  return { i32: mem.i32, ring };
}

/** Both sides arrive, then start together; returns the start time. */
function rendezvous(i32: Int32Array, word: number): number {
  Atomics.add(i32, word, 1);
  while (Atomics.load(i32, word) < 2);
  return performance.now();
}

/**
 * Polls `i32[word]` until it differs from `value` or `micros` pass. A time budget rather than a
 * load count: a load of an unchanged, cached line costs ~1 ns, one the peer just wrote ~100 ns.
 */
function spinUntilChanged(i32: Int32Array, word: number, value: number, micros: number): boolean {
  if (micros <= 0) return false;
  const end = performance.now() + micros / 1000;
  for (;;) {
    for (let i = 0; i < 64; i++) if (Atomics.load(i32, word) !== value) return true;
    if (performance.now() >= end) return false;
  }
}

function signal(i32: Int32Array, bell: number): void {
  Atomics.add(i32, bell, 1);
  Atomics.notify(i32, bell);
}

export function produce(run: RingBenchRun): RingSideStats {
  const { i32, ring } = open(run);
  const stats: RingSideStats = { role: 'producer', signals: 0, sleeps: 0, spinHits: 0, seconds: 0, error: null };
  const payload = new Uint8Array(run.payloadBytes).fill(0x5a);
  const seqView = new Uint32Array(payload.buffer, 0, 1);
  const readWord = ring.readIndexWord;
  const t0 = rendezvous(i32, run.readyWord);
  let seq = 0;
  while (seq < run.packets) {
    const batch = ring.writer();
    let full = false;
    const perBatch = Math.max(1, Math.min(run.batch, Math.floor(run.batchBytes / run.payloadBytes)));
    for (let k = 0; k < perBatch && seq < run.packets; k++) {
      seqView[0] = seq;
      if (!batch.tryWriteRaw(VmbusPacketType.DataInband, 0, seq, 0, null, payload)) {
        full = true;
        break;
      }
      seq++;
    }
    if (batch.corruption) {
      stats.error = batch.corruption.reason;
      break;
    }
    if (batch.commit()) {
      signal(i32, run.dataBell);
      stats.signals++;
    }
    if (!full) continue;
    if (spinUntilChanged(i32, readWord, Atomics.load(i32, readWord), run.spinMicros)) {
      stats.spinHits++;
      continue;
    }
    const bell = Atomics.load(i32, run.spaceBell);
    if (ring.requestSpace(batch.neededBytes)) continue;
    stats.sleeps++;
    if (Atomics.wait(i32, run.spaceBell, bell, SLEEP_TIMEOUT_MS) === 'timed-out') {
      stats.error = 'producer never woken';
      break;
    }
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}

export function consume(run: RingBenchRun): RingSideStats {
  const { i32, ring } = open(run);
  const stats: RingSideStats = { role: 'consumer', signals: 0, sleeps: 0, spinHits: 0, seconds: 0, error: null };
  const pkt = new ReceivedPacket(run.payloadBytes + 16);
  const seqOf = new Uint32Array(pkt.bytes.buffer, 16, 1);
  const writeWord = ring.writeIndexWord;
  ring.maskInterrupt();
  const t0 = rendezvous(i32, run.readyWord);
  let expected = 0;
  outer: while (expected < run.packets) {
    const batch = ring.reader();
    const perBatch = Math.max(1, Math.min(run.batch, Math.floor(run.batchBytes / run.payloadBytes)));
    let n = 0;
    for (; n < perBatch; n++) {
      const p = batch.tryRead(pkt);
      if (p === null) break;
      if (p.kind === 'corrupt') {
        stats.error = p.reason;
        break outer;
      }
      if (seqOf[0] !== expected) {
        stats.error = `expected packet ${expected}, got ${seqOf[0]}`;
        break outer;
      }
      expected++;
    }
    if (batch.commit()) {
      signal(i32, run.spaceBell);
      stats.signals++;
    }
    if (n > 0 || expected === run.packets) continue;
    if (spinUntilChanged(i32, writeWord, ring.readIndex(), run.spinMicros)) {
      stats.spinHits++;
      continue;
    }
    const bell = Atomics.load(i32, run.dataBell);
    if (ring.unmaskInterrupt()) {
      ring.maskInterrupt();
      continue;
    }
    stats.sleeps++;
    if (Atomics.wait(i32, run.dataBell, bell, SLEEP_TIMEOUT_MS) === 'timed-out') {
      stats.error = 'consumer never woken';
      break;
    }
    ring.maskInterrupt();
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}
