/** The guests' checksum round (child-sdk/guests/lib/checksum-round.ts), in u32 arithmetic. */
export function checksumRound(sum: number, r: number, work: number): number {
  let x = (sum ^ Math.imul(r, 0x9e3779b9)) >>> 0;
  for (let i = 0; i < work; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    x = (x + i) >>> 0;
  }
  return (Math.imul(sum, 31) ^ x) >>> 0;
}
