import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { ReceivedPacket, VmbusPacketType, VmbusRing } from '../../vmbus/ring/index.ts';

/**
 * The two sides of the ring stress test, each on its own thread over one shared memory. Signals
 * are Atomics.notify on a doorbell word (a counter, so a wait that started on a stale value
 * returns at once); sleeps are Atomics.wait with a timeout: a wait that times out means a lost
 * wake-up (the peer was blocked on us and nobody signalled) and ends the run with a failure.
 */
export interface StressArgs {
  role: 'producer' | 'consumer';
  memory: WebAssembly.Memory;
  controlGpa: number;
  dataSize: number;
  /** Int32 word indices of the doorbells: consumer ("data arrived") and producer ("space freed"). */
  dataBell: number;
  spaceBell: number;
  packets: number;
  /** Payload bytes: 8 + (seq % spread). */
  spread: number;
  timeoutMs: number;
}

export interface StressResult {
  role: string;
  packets: number;
  signals: number;
  sleeps: number;
  lostWakeups: number;
  error: string | null;
}

function ringOf(args: StressArgs): { mem: GuestMemory; ring: VmbusRing } {
  const mem = GuestMemory.attach(args.memory);
  const ring = VmbusRing.create(mem, args.controlGpa, args.dataSize);
  if (!(ring instanceof VmbusRing)) throw new Error(ring.reason);
  return { mem, ring };
}

function ring(i32: Int32Array, bell: number): void {
  Atomics.add(i32, bell, 1);
  Atomics.notify(i32, bell);
}

export function runProducer(args: StressArgs): StressResult {
  const { mem, ring: r } = ringOf(args);
  const i32 = mem.i32;
  const res: StressResult = { role: 'producer', packets: 0, signals: 0, sleeps: 0, lostWakeups: 0, error: null };
  const payload = new Uint8Array(8 + args.spread);
  const pv = new DataView(payload.buffer);
  let seq = 0;
  while (seq < args.packets) {
    const batch = r.writer();
    let blocked = false;
    while (seq < args.packets) {
      pv.setUint32(0, seq, true);
      pv.setUint32(4, ~seq, true);
      payload.fill(seq & 0xff, 8);
      if (!batch.tryWriteRaw(VmbusPacketType.DataInband, 0, seq, 0, null, payload, 0, 8 + (seq % args.spread))) {
        blocked = true;
        break;
      }
      seq++;
    }
    if (batch.corruption) {
      res.error = batch.corruption.reason;
      break;
    }
    if (batch.commit()) {
      ring(i32, args.dataBell);
      res.signals++;
    }
    if (!blocked) continue;
    const bell = Atomics.load(i32, args.spaceBell);
    if (r.requestSpace(batch.neededBytes)) continue;
    res.sleeps++;
    if (Atomics.wait(i32, args.spaceBell, bell, args.timeoutMs) === 'timed-out') {
      res.lostWakeups++;
      res.error = `producer not woken within ${args.timeoutMs} ms (pending_send_sz ${r.pendingSendSize()}, free ${r.bytesFree(r.writeIndex(), r.readIndex())})`;
      break;
    }
  }
  res.packets = seq;
  return res;
}

export function runConsumer(args: StressArgs): StressResult {
  const { mem, ring: r } = ringOf(args);
  const i32 = mem.i32;
  const res: StressResult = { role: 'consumer', packets: 0, signals: 0, sleeps: 0, lostWakeups: 0, error: null };
  const pkt = new ReceivedPacket(8 + args.spread + 16);
  let expected = 0;
  r.maskInterrupt(); // draining: the producer need not signal (Linux hv_begin_read)
  outer: for (;;) {
    const batch = r.reader();
    for (;;) {
      const p = batch.tryRead(pkt);
      if (p === null) break;
      if (p.kind === 'corrupt') {
        res.error = p.reason;
        break outer;
      }
      const v = pkt.view;
      const seq = v.getUint32(16, true);
      const len = 8 + (expected % args.spread);
      if (
        seq !== expected ||
        pkt.transIdLo !== expected ||
        v.getUint32(20, true) !== ~expected >>> 0 ||
        pkt.payloadLength !== ((len + 7) & ~7) ||
        (len > 8 && pkt.bytes[16 + len - 1] !== (expected & 0xff))
      ) {
        res.error = `packet ${expected}: got seq ${seq}, trans id ${pkt.transIdLo}, payload ${pkt.payloadLength} bytes`;
        break outer;
      }
      expected++;
    }
    if (batch.commit()) {
      ring(i32, args.spaceBell);
      res.signals++;
    }
    if (expected === args.packets) break;
    // About to sleep: unmask, then re-check (Linux hv_end_read), else a packet written while
    // the mask was set would never be signalled.
    const bell = Atomics.load(i32, args.dataBell);
    if (r.unmaskInterrupt()) {
      r.maskInterrupt();
      continue;
    }
    res.sleeps++;
    if (Atomics.wait(i32, args.dataBell, bell, args.timeoutMs) === 'timed-out') {
      res.lostWakeups++;
      res.error = `consumer not woken within ${args.timeoutMs} ms at packet ${expected}`;
      break;
    }
    r.maskInterrupt();
  }
  res.packets = expected;
  return res;
}
