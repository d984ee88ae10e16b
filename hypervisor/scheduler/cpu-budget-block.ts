/**
 * The words the host's scheduler and a partition's VP threads share: per VP, the CPU budget of
 * each period (written by the root partition, read by the VP at its preemption exits) and what
 * the VP reports back (its thread id, for metering; whether and how long it parked for want of
 * budget, which is how the host learns that the VP wanted more than it got). One
 * SharedArrayBuffer per partition, apart from the partition's control block because its layout
 * is the scheduler's alone.
 *
 * A budget of Infinity means "not enforced": the VP never looks at the clock.
 */
export const DEFAULT_PERIOD_US = 50_000;
const HEADER = 16; // f64 period (µs), i32 generation of the settings
const SLOT = 64;
// Per-VP slot, byte offsets.
const BUDGET_US = 0; // f64: this VP's budget per period, µs; Infinity = unlimited
const PARKED_US = 8; // f64: total time parked out of budget, µs (VP-written)
const PARKS = 16; // f64: periods in which the VP ran out of budget (VP-written)
const TID = 24; // i32: the VP thread's kernel thread id, 0 until known (VP-written)
const PARKED = 28; // i32: 1 while parked out of budget (VP-written)
const CPU_READS = 32; // f64: CPU-clock readings the VP took to enforce its budget (VP-written)

export class CpuBudgetBlock {
  readonly sab: SharedArrayBuffer;
  readonly vpCount: number;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;

  constructor(sabOrVpCount: SharedArrayBuffer | number) {
    this.sab = typeof sabOrVpCount === 'number' ? new SharedArrayBuffer(HEADER + sabOrVpCount * SLOT) : sabOrVpCount;
    this.vpCount = Math.floor((this.sab.byteLength - HEADER) / SLOT);
    this.f64 = new Float64Array(this.sab);
    this.i32 = new Int32Array(this.sab);
    if (typeof sabOrVpCount === 'number') {
      this.f64[0] = DEFAULT_PERIOD_US;
      for (let vp = 0; vp < this.vpCount; vp++) this.f64[(HEADER + vp * SLOT + BUDGET_US) >> 3] = Infinity;
    }
  }

  private at(vp: number, field: number): number {
    if (!(vp >= 0 && vp < this.vpCount)) throw new RangeError(`VP ${vp} is outside 0..${this.vpCount - 1}`);
    return HEADER + vp * SLOT + field;
  }

  get periodUs(): number {
    return this.f64[0];
  }

  set periodUs(us: number) {
    if (!(us >= 1000 && us <= 1_000_000)) throw new RangeError(`a scheduling period of ${us} µs is outside 1 ms..1 s`);
    this.f64[0] = us;
  }

  budgetUs(vp: number): number {
    return this.f64[this.at(vp, BUDGET_US) >> 3];
  }

  /** Sets the budget per period the VP gets from its next period on (Infinity: unlimited). */
  setBudgetUs(vp: number, us: number): void {
    if (!(us >= 0)) throw new RangeError(`a CPU budget of ${us} µs is not a time`);
    this.f64[this.at(vp, BUDGET_US) >> 3] = us;
  }

  setAllBudgetsUs(us: number): void {
    for (let vp = 0; vp < this.vpCount; vp++) this.setBudgetUs(vp, us);
  }

  tid(vp: number): number {
    return Atomics.load(this.i32, this.at(vp, TID) >> 2);
  }

  setTid(vp: number, tid: number): void {
    Atomics.store(this.i32, this.at(vp, TID) >> 2, tid);
  }

  parked(vp: number): boolean {
    return Atomics.load(this.i32, this.at(vp, PARKED) >> 2) === 1;
  }

  setParked(vp: number, on: boolean): void {
    Atomics.store(this.i32, this.at(vp, PARKED) >> 2, on ? 1 : 0);
  }

  parks(vp: number): number {
    return this.f64[this.at(vp, PARKS) >> 3];
  }

  parkedUs(vp: number): number {
    return this.f64[this.at(vp, PARKED_US) >> 3];
  }

  cpuReads(vp: number): number {
    return this.f64[this.at(vp, CPU_READS) >> 3];
  }

  /** The VP's own accounting (VP thread only). */
  addPark(vp: number, parkedUs: number): void {
    this.f64[this.at(vp, PARKS) >> 3]++;
    this.f64[this.at(vp, PARKED_US) >> 3] += parkedUs;
  }

  setCpuReads(vp: number, n: number): void {
    this.f64[this.at(vp, CPU_READS) >> 3] = n;
  }
}
