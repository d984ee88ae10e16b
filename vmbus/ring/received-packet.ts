import { PACKET_DESCRIPTOR_SIZE } from './ring-layout.ts';

/**
 * Private storage for one received packet: the reader copies the descriptor and the whole packet
 * out of guest memory into `bytes` before anything is validated, so the guest cannot change what
 * the host checked (as Linux hv_pkt_iter_first does, drivers/hv/ring_buffer.c). One object is reused for every
 * packet; the parsed fields describe the last packet read into it.
 */
export class ReceivedPacket {
  readonly kind = 'packet' as const;
  /** Private (non-shared) copy: descriptor at 0, extended header at 16, payload at payloadOffset. */
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly view: DataView;
  readonly capacity: number;
  type = 0;
  offset8 = 0;
  len8 = 0;
  flags = 0;
  transIdLo = 0;
  transIdHi = 0;

  /** `capacity`: the largest packet (len8 × 8, descriptor included) this storage accepts. */
  constructor(capacity: number) {
    const c = Math.max(PACKET_DESCRIPTOR_SIZE, (Math.ceil(capacity) + 7) & ~7);
    this.capacity = c;
    this.bytes = new Uint8Array(c);
    this.u32 = new Uint32Array(this.bytes.buffer);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Packet length without the trailer (len8 × 8). */
  get length(): number {
    return this.len8 << 3;
  }
  get headerLength(): number {
    return (this.offset8 << 3) - PACKET_DESCRIPTOR_SIZE;
  }
  get payloadOffset(): number {
    return this.offset8 << 3;
  }
  /** Payload length including the sender's zero padding (Linux: (len8 − offset8) × 8). */
  get payloadLength(): number {
    return (this.len8 - this.offset8) << 3;
  }
  get transactionId(): bigint {
    return (BigInt(this.transIdHi) << 32n) | BigInt(this.transIdLo);
  }

  /** A view of the payload in the private copy (allocates a view: not for per-packet hot paths). */
  payload(): Uint8Array {
    return this.bytes.subarray(this.offset8 << 3, this.len8 << 3);
  }
  /** A view of the extended header (GPA ranges, transfer-page ranges). */
  header(): Uint8Array {
    return this.bytes.subarray(PACKET_DESCRIPTOR_SIZE, this.offset8 << 3);
  }
}
