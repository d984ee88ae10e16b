/**
 * The saved-state file's records: field-numbered protobuf, so a later release can read an older
 * file (new record kinds and fields get new numbers; a reader ignores fields it does not know
 * inside a record it knows, and refuses a record kind it does not know: state it cannot restore
 * must not be dropped silently). The file layout around the records (header, framing,
 * checksums) is in vmwp/saved-state-file.ts.
 *
 * 64-bit register and MSR values travel as decimal strings between this module and its callers
 * (protobufjs's exact form of a uint64); sizes, addresses and times as numbers.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto3";
package tsvisor.savedstate.v1;

// Format 1 only: the control block as a raw dump. Never written now; a reader refuses it.
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
  // Records before this one (format 2), so a file cut at a record boundary is told apart.
  uint32 record_count = 4;
}

// Partition-wide hypervisor state a guest set (TLFS: HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL).
message PartitionRecord {
  uint32 vp_count = 1;
  uint64 guest_os_id = 2;
  uint64 hypercall_msr = 3;
  // Format 3: the image preparation the VP stacks were captured from (GuestImage.preparation).
  string image_preparation = 4;
}

// A synthetic timer (TLFS HV_X64_MSR_STIMERx_CONFIG/COUNT) and its next expiry.
message SyntheticTimerRecord {
  uint32 index = 1;
  uint64 config = 2;
  uint64 count = 3;
  // Reference time (100 ns) of the next expiry, or -1 when not armed.
  double due = 4;
  bool message_pending = 5;
}

// An architectural register by its HV_REGISTER_NAME, 16 bytes as HvCallGetVpRegisters returns it.
message RegisterRecord {
  uint32 name = 1;
  bytes value = 2;
}

// A hypervisor message (timer expiry) queued for a SINT, not yet in the guest's message slot.
message QueuedMessageRecord {
  uint32 sint = 1;
  bytes message = 2;
}

// A mutable global of the guest image, by the rewrite's export name; its value's 8 bytes (LE).
message GuestGlobalRecord {
  string name = 1;
  string type = 2;
  bytes bits = 3;
}

// How a VP continues (format 3; hypervisor/vp/vp-capture.ts): its captured Wasm stack (Asyncify's
// unwound frames), globals, the value of the exit it was parked in, and the entry it had called.
message VpExecutionRecord {
  uint32 state = 1;          // 1 captured, 2 never started, 3 exited
  uint32 entry_kind = 2;     // 1 boot, 2 vp_start (an AP)
  uint32 entry_rip = 3;
  bytes stack = 4;
  repeated GuestGlobalRecord globals = 5;
  uint32 result_kind = 6;    // 1 none, 2 i32, 3 i64, 4 inside halt
  uint64 result_value = 7;
  bool interrupts_enabled = 8;
  double runtime_ticks = 9;    // HV_X64_MSR_VP_RUNTIME (100 ns)
}

// One virtual processor: SynIC (TLFS 11), synthetic timers, pending interrupts, registers.
message VpRecord {
  uint32 vp = 1;
  repeated uint32 pending_vectors = 2;
  uint32 scontrol = 3;
  uint64 simp = 4;
  uint64 siefp = 5;
  repeated uint64 sint = 6;
  repeated SyntheticTimerRecord timers = 7;
  repeated RegisterRecord registers = 8;
  repeated QueuedMessageRecord queued_messages = 9;
  VpExecutionRecord execution = 10;
}

message Record {
  oneof body {
    PartitionControlRecord partition_control = 1;
    ReferenceTimeRecord reference_time = 2;
    DeviceRecord device = 3;
    MemoryRunRecord memory_run = 4;
    EndRecord end = 5;
    PartitionRecord partition = 6;
    VpRecord vp = 7;
  }
}
`;

const RecordType = protobuf.parse(SCHEMA).root.lookupType('tsvisor.savedstate.v1.Record');

export interface VpStateRecord {
  vp: number;
  pendingVectors: number[];
  scontrol: number;
  simp: string;
  siefp: string;
  sint: string[];
  timers: { index: number; config: string; count: string; due: number; messagePending: boolean }[];
  registers: { name: number; value: Uint8Array }[];
  queuedMessages: { sint: number; message: Uint8Array }[];
  /** Format 3 (vmwp/vp-execution-record.ts); absent in a record decoded from an older file. */
  execution?: VpExecutionRecord;
}

export interface VpExecutionRecord {
  state: number;
  entryKind: number;
  entryRip: number;
  stack: Uint8Array;
  globals: { name: string; type: string; bits: Uint8Array }[];
  resultKind: number;
  resultValue: string;
  interruptsEnabled: boolean;
  runtimeTicks: number;
}

export type SavedRecord =
  | { partitionControl: { vpCount: number; control: Uint8Array } }
  | { referenceTime: { referenceTicks: number } }
  | { device: { name: string; version: number; state: Uint8Array } }
  | { memoryRun: { gpa: number; data: Uint8Array } }
  | { end: { memoryBytes: number; pageRuns: number; pagesWritten: number; recordCount: number } }
  | { partition: { vpCount: number; guestOsId: string; hypercallMsr: string; imagePreparation: string } }
  | { vp: VpStateRecord };

/** Human names of the record kinds, for errors that name a record. */
export const RECORD_KIND_NAMES: Record<string, string> = {
  partitionControl: 'raw control block',
  referenceTime: 'reference time',
  device: 'device',
  memoryRun: 'memory run',
  end: 'end',
  partition: 'partition',
  vp: 'virtual processor',
};

/** The record kind's name by the field number of an encoded Record's first tag (for an error about it). */
export function recordKindOfBytes(bytes: Uint8Array): string | undefined {
  const key = bytes.length > 0 ? Object.keys(RECORD_KIND_NAMES)[(bytes[0] >> 3) - 1] : undefined;
  return key === undefined ? undefined : RECORD_KIND_NAMES[key];
}

export function encodeRecord(r: SavedRecord): Uint8Array {
  return RecordType.encode(RecordType.fromObject(r)).finish();
}

/** Numbers for sizes, addresses and times; 64-bit register values stay exact as strings. */
const NUMERIC_LONGS = new Set(['referenceTicks', 'gpa', 'memoryBytes']);

export function decodeRecord(bytes: Uint8Array): SavedRecord {
  const o = RecordType.toObject(RecordType.decode(bytes), {
    longs: String,
    bytes: Uint8Array as unknown as typeof String,
    defaults: true,
    arrays: true,
    oneofs: true,
  }) as Record<string, unknown> & { body?: string };
  if (!o.body) throw new Error('a record of a kind this tsvisor does not know (written by a newer release?)');
  const body = o[o.body] as Record<string, unknown>;
  for (const k of NUMERIC_LONGS) if (typeof body[k] === 'string') body[k] = Number(body[k]);
  return { [o.body]: body } as SavedRecord;
}
