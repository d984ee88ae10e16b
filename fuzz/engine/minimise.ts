/**
 * Shrinks an input that shows a finding while it keeps showing the same one (same signature):
 * removes halves, quarters, … down to single bytes (ddmin's complement step), then replaces
 * bytes by '0' where that keeps the finding, which makes text findings readable.
 */
export async function minimise(
  input: Uint8Array,
  reproduces: (candidate: Uint8Array) => Promise<boolean>,
  budget: { attempts: number; deadline: number },
): Promise<Uint8Array> {
  let best = input;
  let attempts = 0;
  const spent = () => ++attempts > budget.attempts || performance.now() > budget.deadline;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at < best.length; ) {
      if (spent()) return best;
      const candidate = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      candidate.set(best.subarray(0, at));
      candidate.set(best.subarray(at + chunk), at);
      if (await reproduces(candidate)) best = candidate;
      else at += chunk;
    }
  }
  for (let at = 0; at < best.length; at++) {
    if (best[at] === 0x30) continue;
    if (spent()) return best;
    const candidate = best.slice();
    candidate[at] = 0x30;
    if (await reproduces(candidate)) best = candidate;
  }
  return best;
}
