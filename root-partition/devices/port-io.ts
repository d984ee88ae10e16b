/**
 * What an emulated device offers the I/O bus. The bus routes the VP's port-I/O intercepts here;
 * a device never sees another device's ports.
 */
export type AccessSize = 1 | 2 | 4;

export interface PortRange {
  readonly base: number;
  readonly length: number;
}

export interface PortIoDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  /** IN of `size` bytes. Returns the value (masked to size by the bus). */
  read(port: number, size: AccessSize): number;
  /** OUT of `size` bytes. */
  write(port: number, size: AccessSize, value: number): void;
  /**
   * String I/O (`rep ins`): fill `dst` (a bounds-checked view of guest memory, `count` units of
   * `size` bytes) in one call. Returns the units transferred. Devices without it get `read` per unit.
   */
  readString?(port: number, size: AccessSize, dst: Uint8Array, count: number): number;
  /** String I/O (`rep outs`) from `src`. Returns the units transferred. */
  writeString?(port: number, size: AccessSize, src: Uint8Array, count: number): number;
}

/** An interrupt request line into the emulated interrupt controller (edge or level as the device needs). */
export interface InterruptLine {
  /** Drives the line high (asserted) or low. */
  set(level: boolean): void;
}
