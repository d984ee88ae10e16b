// The VMBus ring buffer, host side (Linux drivers/hv/ring_buffer.c, include/linux/hyperv.h).
export * from './ring-layout.ts';
export * from './ring-error.ts';
export { VmbusRing, RING_MIN_DATA_SIZE, RING_MAX_DATA_SIZE } from './vmbus-ring.ts';
export { RingWriteBatch, type OutgoingPacket } from './ring-writer.ts';
export { RingReadBatch } from './ring-reader.ts';
export { ReceivedPacket } from './received-packet.ts';
export * from './packet-headers.ts';
