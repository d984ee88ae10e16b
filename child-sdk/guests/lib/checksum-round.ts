// One round of the order-dependent checksum the save/restore workloads compute (checksum,
// smp-work): a deterministic mix of the previous sum and the round number. A round lost, repeated
// or applied to stale state gives a different chain. The host recomputes it in
// test/helpers/checksum-round.ts.
export function checksumRound(sum: u32, r: u32, work: u32): u32 {
  let x = sum ^ (r * 0x9e3779b9);
  for (let i: u32 = 0; i < work; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x += i;
  }
  return (sum * 31) ^ x;
}
