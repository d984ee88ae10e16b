/**
 * The AML encoder and the VMBus SSDT (root-partition/x86/acpi-aml.ts, vmbus-ssdt.ts): exact bytes
 * per ACPI 6.4 §5.2.6 and §20.2. That Linux finds the device in it is the boot test's part.
 */
import { describe, expect, it } from 'vitest';
import { acpiTable, amlInteger, amlString, irqNoFlags, nameString, pkgLength } from '../../root-partition/x86/acpi-aml.ts';
import { vmbusSsdt } from '../../root-partition/x86/vmbus-ssdt.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('AML encoding', () => {
  it('encodes PkgLength in 1 to 4 bytes, counting its own bytes', () => {
    expect(hex(pkgLength(0))).toBe('01');
    expect(hex(pkgLength(62))).toBe('3f'); // 63: the largest one-byte length
    expect(hex(pkgLength(63))).toBe('4104'); // 65 = 0x041 → low nibble 1, then 0x04
    expect(hex(pkgLength(0xffd))).toBe('4fff'); // 0xfff: the largest two-byte length
    expect(hex(pkgLength(0xffe))).toBe('810001'); // 0x1001: nibble 1, then 0x00, 0x01
    expect(hex(pkgLength(0xffffc))).toBe('8fffff'); // 0xfffff
    expect(hex(pkgLength(0xffffd))).toBe('c1000001'); // 0x100001
    expect(() => pkgLength(0x10000000)).toThrow(RangeError);
  });

  it('encodes names, strings and integers in their shortest forms', () => {
    expect(hex(nameString('\\_SB'))).toBe('5c5f53425f');
    expect(hex(nameString('\\_SB.PCI0'))).toBe('5c2e5f53425f50434930');
    expect(hex(nameString('\\_SB.PCI0.ISA'))).toBe('5c2f035f53425f504349304953415f'); // ISA padded to ISA_
    expect(hex(nameString('\\'))).toBe('5c00');
    expect(() => nameString('vmbs')).toThrow();
    expect(() => nameString('TOOLONG')).toThrow();
    expect(hex(amlString('VMBUS'))).toBe('0d564d42555300');
    expect(() => amlString('a\0b')).toThrow();
    expect([0, 1, 2, 0x100, 0x10000, 2 ** 32].map((n) => hex(amlInteger(n)))).toEqual(['00', '01', '0a02', '0b0001', '0c00000100', '0e0000000001000000']);
    expect(hex(irqNoFlags([5]))).toBe('222000');
    expect(() => irqNoFlags([16])).toThrow(RangeError);
  });

  it("gives a table a header whose length is the table's and whose checksum makes every byte sum to 0", () => {
    const t = acpiTable({ signature: 'SSDT', revision: 2, oemId: 'A', oemTableId: 'B', oemRevision: 7, creatorId: 'C', creatorRevision: 9 }, [
      Uint8Array.of(1, 2, 3),
    ]);
    expect(t.length).toBe(39);
    expect(new DataView(t.buffer).getUint32(4, true)).toBe(39);
    expect(t.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
    expect(Buffer.from(t.subarray(10, 36)).toString('latin1')).toBe('A     B       \x07\x00\x00\x00C   \x09\x00\x00\x00');
  });
});

describe('the VMBus SSDT', () => {
  it('is Scope(\\_SB) { Device(VMBS) { _HID "VMBUS", _UID 0, _CRS (empty template) } }, byte for byte', () => {
    const t = vmbusSsdt();
    expect(hex(t)).toBe(
      '53534454' +
        '4f000000' +
        '02' +
        hex(t.subarray(9, 10)) +
        '545356534f52' +
        '564d425553202020' +
        '01000000' +
        '54535653' +
        '01000000' +
        '102a5c5f53425f' + // Scope, PkgLength 42, \_SB_
        '5b8222564d4253' + // Device, PkgLength 34, VMBS
        '085f4849440d564d42555300' + // Name(_HID, "VMBUS")
        '085f55494400' + // Name(_UID, Zero)
        '085f435253' +
        '11050a027900', // Name(_CRS, Buffer(2) { End Tag })
    );
    expect(t.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
  });
});
