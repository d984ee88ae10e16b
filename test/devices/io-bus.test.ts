import { describe, expect, it } from 'vitest';
import { IoBus } from '../../root-partition/devices/io-bus.ts';
import type { AccessSize, PortIoDevice, PortRange } from '../../root-partition/devices/port-io.ts';

/** A device that records its accesses and returns port + size as data. */
class Recorder implements PortIoDevice {
  readonly log: string[] = [];
  constructor(
    readonly name: string,
    readonly ports: readonly PortRange[],
  ) {}
  read(port: number, size: AccessSize): number {
    this.log.push(`r${size}@${port.toString(16)}`);
    return 0xabcdef00 + port;
  }
  write(port: number, size: AccessSize, value: number): void {
    this.log.push(`w${size}@${port.toString(16)}=${value.toString(16)}`);
  }
}

describe('IoBus', () => {
  it('dispatches by port and masks values to the access size', () => {
    const bus = new IoBus();
    const d = new Recorder('d', [
      { base: 0x60, length: 1 },
      { base: 0x64, length: 1 },
    ]);
    bus.register(d);
    expect(bus.read(0x60, 1)).toBe(0x60);
    expect(bus.read(0x64, 2)).toBe(0xef64);
    expect(bus.read(0x64, 4)).toBe(0xabcdef64);
    bus.write(0x60, 1, 0x1234);
    expect(d.log).toEqual(['r1@60', 'r2@64', 'r4@64', 'w1@60=34']);
    expect(bus.counters(d)).toEqual({ reads: 3, writes: 1, stringOps: 0, stringUnits: 0, faults: 0 });
  });

  it('unclaimed ports read all ones of the access size and swallow writes', () => {
    const bus = new IoBus();
    expect(bus.read(0x80, 1)).toBe(0xff);
    expect(bus.read(0x80, 2)).toBe(0xffff);
    expect(bus.read(0x80, 4)).toBe(0xffffffff);
    bus.write(0x80, 1, 0);
    const dst = new Uint8Array(6);
    expect(bus.readString(0x80, 2, dst, 3)).toBe(3);
    expect([...dst]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it('refuses overlapping, invalid and duplicate registrations and leaves the bus unchanged', () => {
    const bus = new IoBus();
    const a = new Recorder('a', [{ base: 0x1f0, length: 8 }]);
    bus.register(a);
    expect(() => bus.register(new Recorder('b', [{ base: 0x1f7, length: 2 }]))).toThrow(/0x1f7.*a/);
    expect(() => bus.register(new Recorder('c', [{ base: 0xfffe, length: 4 }]))).toThrow(/invalid/);
    expect(() => bus.register(new Recorder('d', [{ base: 0x10, length: 0 }]))).toThrow(/invalid/);
    const selfOverlap = new Recorder('e', [
      { base: 0x300, length: 4 },
      { base: 0x302, length: 4 },
    ]);
    expect(() => bus.register(selfOverlap)).toThrow(/overlap/);
    expect(bus.deviceAt(0x300)).toBeUndefined();
    expect(() => bus.register(a)).toThrow(/already/);
    expect(bus.deviceAt(0x1f8)).toBeUndefined();
    bus.unregister(a);
    expect(bus.read(0x1f0, 1)).toBe(0xff);
    bus.register(new Recorder('b', [{ base: 0x1f7, length: 2 }]));
  });

  it('string I/O falls back to one call per unit, little-endian in the view', () => {
    const bus = new IoBus();
    const d = new Recorder('d', [{ base: 0x100, length: 1 }]);
    bus.register(d);
    const dst = new Uint8Array(8);
    expect(bus.readString(0x100, 4, dst, 2)).toBe(2);
    expect([...dst]).toEqual([0x00, 0xf0, 0xcd, 0xab, 0x00, 0xf0, 0xcd, 0xab]); // 0xabcdef00 + 0x100
    const src = Uint8Array.of(1, 2, 3, 4);
    expect(bus.writeString(0x100, 2, src, 2)).toBe(2);
    expect(d.log.slice(2)).toEqual(['w2@100=201', 'w2@100=403']);
    // A count larger than the view is clamped to the view.
    expect(bus.writeString(0x100, 2, src, 1000)).toBe(2);
    expect(bus.counters(d)).toMatchObject({ reads: 0, writes: 0, stringOps: 3, stringUnits: 6 });
  });

  it('uses the device string handler when it has one', () => {
    const bus = new IoBus();
    let calls = 0;
    const d: PortIoDevice = {
      name: 's',
      ports: [{ base: 0x200, length: 1 }],
      read: () => 0,
      write: () => {},
      readString: (_p, _s, dst, count) => {
        calls++;
        dst.fill(7, 0, count);
        return count;
      },
    };
    bus.register(d);
    const dst = new Uint8Array(100);
    expect(bus.readString(0x200, 1, dst, 100)).toBe(100);
    expect(calls).toBe(1);
    expect(dst.every((b) => b === 7)).toBe(true);
  });

  it('contains a device exception: the guest reads all ones, the fault is counted', () => {
    const bus = new IoBus();
    const d: PortIoDevice = {
      name: 'bad',
      ports: [{ base: 0x10, length: 1 }],
      read: () => {
        throw new Error('bug');
      },
      write: () => {
        throw new Error('bug');
      },
    };
    bus.register(d);
    expect(bus.read(0x10, 2)).toBe(0xffff);
    bus.write(0x10, 1, 0);
    expect(bus.counters(d)!.faults).toBe(2);
    expect((bus.lastFault as Error).message).toBe('bug');
  });
});

describe('IoBus: malformed accesses', () => {
  it('an access size other than 1, 2, 4 reaches no device', () => {
    const bus = new IoBus();
    const d = new Recorder('d', [{ base: 0x60, length: 1 }]);
    bus.register(d);
    expect(bus.read(0x60, 3 as AccessSize)).toBe(0xffffffff);
    bus.write(0x60, 8 as AccessSize, 1);
    expect(bus.readString(0x60, 0 as AccessSize, new Uint8Array(8), 8)).toBe(0);
    expect(d.log).toEqual([]);
    expect(bus.read(0x10060, 1)).toBe(0x60); // port numbers wrap at 16 bits
  });
});
