/**
 * VMMS↔VMWP control messages: a versioned, field-numbered protobuf schema, so a VMMS and a VMWP
 * of different releases can still talk (unknown fields are skipped; new fields get new numbers;
 * numbers are never reused). Every request carries the protocol version; a VMWP answers a
 * request of an unknown major version with an error rather than guessing.
 */
import protobuf from 'protobufjs';

export const CONTROL_PROTOCOL_VERSION = 1;

const SCHEMA = `
syntax = "proto3";
package tsvisor.vmwp.v1;

enum Operation {
  OPERATION_UNSPECIFIED = 0;
  STATUS = 1;
  PAUSE = 2;
  RESUME = 3;
  SAVE = 4;
  TURN_OFF = 5;
  RESET = 6;
  COUNTERS = 7;
  // Integration services (added in protocol version 1; a worker that predates them answers
  // "unknown operation").
  HEARTBEAT = 8;
  SHUTDOWN = 9;
  KVP_GET = 10;
  KVP_SET = 11;
  // Bytes typed at the VM's console, for COM1's receiver (a worker that predates it answers
  // "unknown operation").
  CONSOLE_INPUT = 12;
  // KVP_DELETE: removes a host item (kvp_pool, kvp_key) from the guest.
  KVP_DELETE = 13;
  // Live migration, source side: MIGRATE (the request's migration field: destination, TLS
  // identity, trusted hosts, what HELLO carries) answers when the destination runs the VM, the
  // worker then exits; CANCEL_MIGRATION stops one before its commit point.
  MIGRATE = 14;
  CANCEL_MIGRATION = 15;
  // CHECKPOINT: saves the whole VM into saved_state_path without stopping it and moves each
  // drive in disk_switches to its new file while the VPs are parked; answers with pause_ms.
  CHECKPOINT = 16;
  // MERGE_DISK: merges the drive on disk_switches[0].from into its parent disk_switches[0].to
  // while the VM runs; answers when the drive is on the parent, with pause_ms (its I/O pause).
  MERGE_DISK = 17;
  // Live migration, destination side: VMMS has recorded the arriving VM as Running (STATUS
  // answered 'running'); only then does the worker tell the source (the migration's RUNNING), so
  // the move ends with the destination's VMMS listing the VM Running.
  ARRIVAL_RECORDED = 18;
}

message DiskSwitch {
  string from = 1;
  string to = 2;
}

message VpExit {
  uint32 vp = 1;
  string reason = 2;
  string detail = 3;
}

message Request {
  uint32 version = 1;
  uint32 request_id = 2;
  Operation operation = 3;
  string saved_state_path = 4;
  // SHUTDOWN: how long the guest has to stop before the worker turns the VM off; force; reason.
  uint32 timeout_ms = 5;
  bool force = 6;
  string reason = 7;
  // KVP_GET / KVP_SET: pool (KvpPool), key, value.
  uint32 kvp_pool = 8;
  string kvp_key = 9;
  string kvp_value = 10;
  // CONSOLE_INPUT: the bytes, as a terminal sent them.
  bytes console_input = 11;
  // MIGRATE: JSON (root-partition/migration/worker-migration.ts, MigrateRequest).
  string migration = 12;
  // CHECKPOINT: each drive's current file and the differencing child it moves to.
  repeated DiskSwitch disk_switches = 13;
}

message Response {
  uint32 version = 1;
  uint32 request_id = 2;
  bool ok = 3;
  string error = 4;
  string error_code = 5;
  string state = 6;
  uint32 pid = 7;
  string vm_id = 8;
  double uptime_ms = 9;
  // HEARTBEAT: Msvm_HeartbeatComponent OperationalStatus (2 OK, 3 Degraded, 12 No Contact, 13 Lost Communication).
  uint32 heartbeat_status = 10;
  // SHUTDOWN: shut-down, timed-out (the worker turned the VM off), refused, unavailable.
  string shutdown_outcome = 11;
  // KVP_GET: the value, and whether the guest had the key.
  string kvp_value = 12;
  bool kvp_found = 13;
  // MIGRATE: JSON (MigrationSummary).
  string migration_summary = 14;
  // CHECKPOINT: how long the VPs were parked, in milliseconds.
  double pause_ms = 15;
}

// Unsolicited, VMWP → VMMS.
message Notification {
  uint32 version = 1;
  enum Kind {
    KIND_UNSPECIFIED = 0;
    STATE = 1;
    GUEST_FAULT = 2;
    GUEST_STOPPED = 3;
    WORKER_ERROR = 4;
    // The heartbeat status changed (pushed by the device thread as it happens).
    HEARTBEAT = 5;
    // The guest's KVP items changed (the worker re-reads them and reports differences).
    KVP = 6;
    // A migration's progress (message: JSON MigrationProgress).
    MIGRATION_PROGRESS = 7;
    // A drive's first failure (message: the disk error, naming the file); once per drive.
    DISK_FAILURE = 8;
  }
  Kind kind = 2;
  string state = 3;
  string message = 4;
  repeated VpExit exits = 5;
  // HEARTBEAT: Msvm_HeartbeatComponent OperationalStatus (2, 3, 12, 13, 15).
  uint32 heartbeat_status = 6;
  // KVP: the Guest pool (GuestExchangeItems) and the Auto pool (GuestIntrinsicExchangeItems).
  repeated KvpItem kvp_guest_items = 7;
  repeated KvpItem kvp_intrinsic_items = 8;
}

message KvpItem {
  string key = 1;
  string value = 2;
}

// A control frame holds exactly one of these.
message ControlMessage {
  oneof body {
    Request request = 1;
    Response response = 2;
    Notification notification = 3;
  }
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: false }).root;
const ControlMessageType = root.lookupType('tsvisor.vmwp.v1.ControlMessage');
const OperationEnum = root.lookupEnum('tsvisor.vmwp.v1.Operation');

export type Operation =
  | 'STATUS'
  | 'PAUSE'
  | 'RESUME'
  | 'SAVE'
  | 'TURN_OFF'
  | 'RESET'
  | 'COUNTERS'
  | 'HEARTBEAT'
  | 'SHUTDOWN'
  | 'KVP_GET'
  | 'KVP_SET'
  | 'CONSOLE_INPUT'
  | 'KVP_DELETE'
  | 'MIGRATE'
  | 'CANCEL_MIGRATION'
  | 'CHECKPOINT'
  | 'MERGE_DISK'
  | 'ARRIVAL_RECORDED';

export type ShutdownOutcome = 'shut-down' | 'timed-out' | 'refused' | 'unavailable';

/** What the VMWP reports as the worker-side state of its partition. */
export type WorkerState = 'running' | 'paused' | 'stopped';

export interface ControlRequest {
  version: number;
  requestId: number;
  operation: Operation;
  savedStatePath?: string;
  timeoutMs?: number;
  force?: boolean;
  reason?: string;
  kvpPool?: number;
  kvpKey?: string;
  kvpValue?: string;
  consoleInput?: Uint8Array;
  migration?: string;
  diskSwitches?: { from: string; to: string }[];
}

export interface ControlResponse {
  version: number;
  requestId: number;
  ok: boolean;
  error?: string;
  errorCode?: string;
  state?: string;
  pid?: number;
  vmId?: string;
  uptimeMs?: number;
  heartbeatStatus?: number;
  shutdownOutcome?: string;
  kvpValue?: string;
  kvpFound?: boolean;
  migrationSummary?: string;
  pauseMs?: number;
}

export type NotificationKind = 'STATE' | 'GUEST_FAULT' | 'GUEST_STOPPED' | 'WORKER_ERROR' | 'HEARTBEAT' | 'KVP' | 'MIGRATION_PROGRESS' | 'DISK_FAILURE';

export interface ControlNotification {
  version: number;
  kind: NotificationKind;
  state?: string;
  message?: string;
  exits?: { vp: number; reason: string; detail?: string }[];
  heartbeatStatus?: number;
  kvpGuestItems?: { key: string; value: string }[];
  kvpIntrinsicItems?: { key: string; value: string }[];
}

export type ControlMessage = { request: ControlRequest } | { response: ControlResponse } | { notification: ControlNotification };

export function encodeControl(m: ControlMessage): Uint8Array {
  if ('request' in m && OperationEnum.values[m.request.operation] === undefined) throw new Error(`unknown control operation ${m.request.operation}`);
  // fromObject converts enum names to their numbers.
  return ControlMessageType.encode(ControlMessageType.fromObject(m)).finish();
}

/** Decodes a control frame; throws on bytes that are not a ControlMessage. */
export function decodeControl(bytes: Uint8Array): ControlMessage {
  const obj = ControlMessageType.toObject(ControlMessageType.decode(bytes), { enums: String, longs: Number, defaults: true, oneofs: true }) as Record<
    string,
    unknown
  > & { body?: string };
  switch (obj.body) {
    case 'request':
      return { request: obj.request as ControlRequest };
    case 'response':
      return { response: obj.response as ControlResponse };
    case 'notification':
      return { notification: obj.notification as ControlNotification };
    default:
      throw new Error('control message without a body');
  }
}
