/**
 * The POST diagnostic port (0x80), as PC firmware uses it to mark progress. A guest writes a
 * code there to mark a point in its run; the device takes a snapshot of the VP counters and the
 * device thread's own counters at that instant. The writing VP is blocked in this very exit
 * while the device thread handles it, so the snapshot is exact for that VP: nothing it does
 * before the write is missing and nothing after it is included (the write's own exit is).
 */
import type { AccessSize, PortIoDevice } from '../devices/port-io.ts';

export const POST_CODE_PORT = 0x80;

export class PostCodePort implements PortIoDevice {
  readonly name = 'post';
  readonly ports = [{ base: POST_CODE_PORT, length: 1 }];
  /** The last code written (a read returns it, as on boards with a POST display latch). */
  last = 0;

  constructor(private readonly onCode: (code: number, size: AccessSize) => void) {}

  read(): number {
    return this.last;
  }

  write(_port: number, size: AccessSize, value: number): void {
    this.last = value;
    this.onCode(value, size);
  }
}
