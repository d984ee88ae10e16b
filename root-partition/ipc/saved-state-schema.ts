/**
 * The saved-state file's records: field-numbered protobuf, so a later release can read an older
 * file (new record kinds and fields get new numbers; readers skip what they do not know). The
 * file layout around the records (header, framing) is in vmwp/saved-state-file.ts.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto3";
package tsvisor.savedstate.v1;

// The hypervisor's per-partition control block (SynIC, timers, registers, ports), verbatim.
message PartitionControlRecord {
  uint32 vp_count = 1;
  bytes control = 2;
}

// The partition reference counter (100 ns units) at the moment the VPs were parked.
message ReferenceTimeRecord {
  uint64 reference_ticks = 1;
}

// An emulated device's own state, in the device's own encoding.
message DeviceRecord {
  string name = 1;
  uint32 version = 2;
  bytes state = 3;
}

// A run of guest memory pages that are not all zero; pages not covered are zero.
message MemoryRunRecord {
  uint64 gpa = 1;
  bytes data = 2;
}

message EndRecord {
  uint64 memory_bytes = 1;
  uint32 page_runs = 2;
  uint32 pages_written = 3;
}

message Record {
  oneof body {
    PartitionControlRecord partition_control = 1;
    ReferenceTimeRecord reference_time = 2;
    DeviceRecord device = 3;
    MemoryRunRecord memory_run = 4;
    EndRecord end = 5;
  }
}
`;

const RecordType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.savedstate.v1.Record');

export type SavedRecord =
  | { partitionControl: { vpCount: number; control: Uint8Array } }
  | { referenceTime: { referenceTicks: number } }
  | { device: { name: string; version: number; state: Uint8Array } }
  | { memoryRun: { gpa: number; data: Uint8Array } }
  | { end: { memoryBytes: number; pageRuns: number; pagesWritten: number } };

export function encodeRecord(r: SavedRecord): Uint8Array {
  return RecordType.encode(RecordType.fromObject(r)).finish();
}

export function decodeRecord(bytes: Uint8Array): SavedRecord {
  const o = RecordType.toObject(RecordType.decode(bytes), { longs: Number, bytes: Uint8Array as unknown as typeof String, defaults: true, oneofs: true }) as Record<string, unknown> & { body?: string };
  if (!o.body) throw new Error('saved-state record without a body');
  return { [o.body]: o[o.body] } as SavedRecord;
}
