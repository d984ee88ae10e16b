import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { Gen1Chipset } from '../../root-partition/devices/gen1-chipset.ts';

const MAC0 = Uint8Array.from([0x00, 0x15, 0x5d, 0x00, 0x00, 0x01]);
const MAC1 = Uint8Array.from([0x00, 0x15, 0x5d, 0x00, 0x00, 0x02]);

function cfg(chip: Gen1Chipset, dev: number, reg: number): number {
  chip.bus.write(0xcf8, 4, (0x80000000 | (dev << 11) | reg) >>> 0);
  return chip.bus.read(0xcfc, 4);
}

describe('Gen1Chipset with legacy NICs', () => {
  it('puts each NE2000 at 00:0A.0 onward with its own window and IRQ, raising that PIC line', () => {
    const chip = new Gen1Chipset({ memory: new GuestMemory(1 << 20), nics: [{ mac: MAC0 }, { mac: MAC1 }] });
    expect(cfg(chip, 10, 0)).toBe(0x802910ec);
    expect(cfg(chip, 11, 0)).toBe(0x802910ec);
    expect(cfg(chip, 12, 0)).toBe(0xffffffff);
    expect([cfg(chip, 10, 0x10), cfg(chip, 11, 0x10)]).toEqual([0xc101, 0xc121]);
    expect([cfg(chip, 10, 0x3c) & 0xff, cfg(chip, 11, 0x3c) & 0xff]).toEqual([11, 10]);
    // Unmask IRQ 11 on a PIC programmed as a PC BIOS would, then make the card interrupt.
    const { bus, pic } = chip;
    let wakes = 0;
    pic.onInterruptRequest = () => wakes++;
    for (const [p, v] of [
      [0x20, 0x11],
      [0x21, 0x08],
      [0x21, 0x04],
      [0x21, 0x01],
      [0xa0, 0x11],
      [0xa1, 0x70],
      [0xa1, 0x02],
      [0xa1, 0x01],
      [0x21, 0xfb],
      [0xa1, 0xf7],
    ])
      bus.write(p!, 1, v!);
    bus.write(0xc100 + 0x0f, 1, 0x40); // IMR: RDC
    bus.write(0xc100 + 0x00, 1, 0x12); // remote write with RBCR = 0: RDC at once
    expect(wakes).toBeGreaterThan(0);
    expect(pic.acknowledge()).toBe(0x73); // IRQ 11 = slave input 3 → vector 0x70 + 3
  });

  it('saves and restores the card with the chipset; a record for another MAC changes nothing', () => {
    const chip = new Gen1Chipset({ memory: new GuestMemory(1 << 20), nics: [{ mac: MAC0 }] });
    const card = chip.nics[0]!.card;
    chip.bus.write(0xc100, 1, 0x21);
    chip.bus.write(0xc101, 1, 0x4c);
    card.memory[0x4100] = 0xab;
    const saved = chip.saveState();
    expect(saved.map((r) => r.name)).toContain('ne2000-0');
    const other = new Gen1Chipset({ memory: new GuestMemory(1 << 20), nics: [{ mac: MAC0 }] });
    other.restoreState(saved);
    expect(other.nics[0]!.card.pstart).toBe(0x4c);
    expect(other.nics[0]!.card.memory[0x4100]).toBe(0xab);
    const foreign = new Gen1Chipset({ memory: new GuestMemory(1 << 20), nics: [{ mac: MAC1 }] });
    foreign.bus.write(0xc101, 1, 0x50);
    expect(() => foreign.restoreState(saved)).toThrow(/another MAC/);
    expect(foreign.nics[0]!.card.pstart).toBe(0x50);
    expect(() => new Gen1Chipset({ memory: new GuestMemory(1 << 20) }).restoreState(saved)).toThrow(/no device named ne2000-0/);
  });
});
