/**
 * What a ring reports instead of throwing when the peer broke the protocol: the ring lives in
 * guest memory, so every index and length in it is guest-controlled (Linux hyperv.h vmpacket_descriptor,
 * validation after OpenVMM vm/devices/vmbus/vmbus_ring). The channel that owns the ring
 * decides what to do (usually: stop serving it and reset the channel).
 */
export interface RingCorruption {
  readonly kind: 'corrupt';
  readonly reason: string;
}

/** The ring region given to a ring constructor does not describe a usable ring. */
export interface RingLayoutError {
  readonly kind: 'invalid-layout';
  readonly reason: string;
}

export function corrupt(reason: string): RingCorruption {
  return { kind: 'corrupt', reason };
}

/** Why a loaded ring index cannot be used: beyond the data area or not 8-byte aligned. */
export function badIndexReason(name: 'read_index' | 'write_index', index: number, dataSize: number): string {
  return `${name} ${index} outside a ${dataSize}-byte ring or misaligned`;
}
