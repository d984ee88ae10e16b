import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { prefaultInBackground, prefaultNow } from '../../hypervisor/guest-memory-prefault.ts';

const MiB = 1 << 20;

describe('guest memory prefault', () => {
  it('backs every page: the process grows by the memory size at once, not at first use', () => {
    const mem = new GuestMemory(48 * MiB);
    const before = process.memoryUsage().rss;
    const r = prefaultNow(mem);
    const grew = process.memoryUsage().rss - before;
    expect(r).toMatchObject({ bytes: 48 * MiB, cancelled: false });
    // A reserved, untouched Memory costs no RSS; a backed one costs its size (minus what the image
    // or the allocator had already touched, and rounding).
    expect(grew).toBeGreaterThan(40 * MiB);
  });

  it('changes no byte, so it may run behind a running guest', async () => {
    const mem = new GuestMemory(4 * MiB);
    for (let i = 0; i < mem.size; i += 997) mem.u8[i] = (i * 31) & 0xff;
    const copy = mem.u8.slice();
    const r = await prefaultInBackground(mem, () => false, 1 * MiB);
    expect(r.cancelled).toBe(false);
    expect(r.bytes).toBe(4 * MiB);
    expect(Buffer.compare(Buffer.from(mem.u8), Buffer.from(copy))).toBe(0);
  });

  it('stops when cancelled (the VM stopped), having backed only whole chunks', async () => {
    const mem = new GuestMemory(8 * MiB);
    let chunks = 0;
    const r = await prefaultInBackground(mem, () => ++chunks > 2, 1 * MiB);
    expect(r).toMatchObject({ cancelled: true, bytes: 2 * MiB });
  });
});
