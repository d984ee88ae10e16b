import type { GuestMemory } from '../../../hypervisor/guest-memory.ts';
import { ScsiDataBuffer } from '../../storage/scsi/scsi-data-buffer.ts';
import type { ScsiDataDirection } from '../../storage/scsi/scsi-disk.ts';
import { gpaDirectPrefix, gpaRangesBuffer, type GpaDirectResult, type GpaRangeLike } from '../../../vmbus/host/gpa-direct.ts';
import { ScsiController, type ScsiLunConfig, type SrbResult } from './scsi-controller.ts';
import {
  NtStatus,
  STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL,
  SUPPORTED_PROTOCOL_VERSIONS,
  SrbStatus,
  StorVspProtocolError,
  StorvscRequestType,
  VSTOR_HEADER_SIZE,
  VSTOR_PACKET_SIZE,
  VMSCSI_REQUEST_SIZE,
  VmscsiOffset,
  VmstorProtocolVersion,
  VstorOperation,
  CHANNEL_PROPERTIES_END,
  decodeProtocolVersion,
  decodeSubChannelCount,
  decodeVmscsiRequest,
  decodeVstorHeader,
  encodeChannelProperties,
  encodeProtocolVersion,
  encodeSrbCompletion,
  encodeVstorPacket,
  senseBufferSize,
  vmscsiSizeDelta,
} from './storvsp-protocol.ts';

/** A packet the VSP framework received on this channel (VM_PKT_DATA_INBAND or _USING_GPA_DIRECT). */
export interface StorVspIncoming {
  transactionId: bigint;
  /** VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED was set in the descriptor. */
  completionRequested: boolean;
  /** The in-band payload, already copied out of the ring (the handler keeps no reference). */
  payload: Uint8Array;
  /** The GPA-direct buffer as the VMBus framework checked it (VspChannel.gpaDirect): checked once, not again. */
  data?: GpaDirectResult;
  /** Or the parsed ranges, unchecked (callers without a framework): checked here by the same validator. */
  ranges?: readonly GpaRangeLike[];
}

/** What the framework must send: a VM_PKT_COMP, or an in-band packet with trans_id 0. */
export interface StorVspOutgoing {
  kind: 'completion' | 'inband';
  transactionId: bigint;
  payload: Uint8Array;
}

export interface StorVspOptions {
  memory: GuestMemory;
  luns: readonly ScsiLunConfig[];
  /** Sub-channels offered in QUERY_PROPERTIES (max_channel_cnt); 0 disables multi-channel. */
  maxSubChannels?: number;
  /** max_transfer_bytes in QUERY_PROPERTIES; larger SRBs are refused. OpenVMM uses 256 KiB. */
  maxTransferBytes?: number;
  versions?: readonly number[];
  /** Asked on CREATE_SUB_CHANNELS (already range-checked); true if the framework will offer them. */
  onCreateSubChannels?: (count: number) => boolean;
  /**
   * READ/WRITE of at least this many bytes (and every SYNCHRONIZE CACHE) run queued on a disk
   * that can queue, when the caller takes completions later (handleQueued). Smaller transfers
   * complete synchronously, which is faster for them. Infinity: never queued.
   */
  minQueuedBytes?: number;
}

export type StorVspInitState =
  | { kind: 'begin' }
  | { kind: 'query-version' }
  | { kind: 'query-properties'; version: number }
  | { kind: 'end'; version: number }
  | { kind: 'ready'; version: number };

export interface StorVspStats {
  /** EXECUTE_SRB requests handled after initialization. */
  srbs: number;
  /** Requests refused before reaching a disk (bad state, malformed packet or SRB fields). */
  refused: number;
  /** Packets ignored because the guest did not request a completion. */
  dropped: number;
  /** SRBs failed by an unexpected host-side exception (should stay 0). */
  internalErrors: number;
  /** SRBs that ran queued (completed later, in any order). */
  queued: number;
}

/**
 * The storvsp side of one channel: the vstor initialization state machine (Linux
 * storvsc_channel_init; OpenVMM storvsp) and SRB execution against the controller's LUNs.
 * Pure and synchronous: packets in, packets out; signalling and ring writes are the caller's.
 */
export class StorVspChannel {
  readonly stats: StorVspStats = { srbs: 0, refused: 0, dropped: 0, internalErrors: 0, queued: 0 };
  private state: StorVspInitState;
  private readonly controller: ScsiController;
  private readonly maxTransferBytes: number;
  private readonly maxSubChannels: number;
  private readonly versions: readonly number[];
  /** Every SRB completion is encoded here (handle()'s caller copies it into the ring before the next request). */
  private readonly replyBuffer = new Uint8Array(VSTOR_PACKET_SIZE);
  private readonly minQueuedBytes: number;
  /** Set only inside handleQueued: where a queued SRB's completion goes. */
  private queuedDone: ((out: StorVspOutgoing) => void) | null = null;

  constructor(
    private readonly options: StorVspOptions,
    subChannelOf?: { version: number; controller: ScsiController },
  ) {
    this.maxTransferBytes = options.maxTransferBytes ?? 0x40000;
    this.maxSubChannels = options.maxSubChannels ?? 0;
    this.minQueuedBytes = options.minQueuedBytes ?? Infinity;
    this.versions = options.versions ?? SUPPORTED_PROTOCOL_VERSIONS;
    this.controller = subChannelOf?.controller ?? new ScsiController(options.luns);
    // A sub-channel carries I/O only; the protocol was negotiated on the primary channel.
    this.state = subChannelOf ? { kind: 'ready', version: subChannelOf.version } : { kind: 'begin' };
  }

  get isReady(): boolean {
    return this.state.kind === 'ready';
  }

  get protocolVersion(): number | undefined {
    return 'version' in this.state ? this.state.version : undefined;
  }

  /** Where the vstor initialization stands (and the version it agreed): all this channel keeps between requests. */
  get initState(): StorVspInitState {
    return { ...this.state };
  }

  /** The versions this channel accepts (a saved state's version must be one of them). */
  get acceptedVersions(): readonly number[] {
    return this.versions;
  }

  /** Continues from a saved state (already checked against acceptedVersions). */
  restoreInitState(s: StorVspInitState): void {
    this.state = { ...s };
  }

  /** A handler for a sub-channel the framework opened after CREATE_SUB_CHANNELS. */
  openSubChannel(): StorVspChannel {
    const version = this.protocolVersion;
    if (version === undefined) throw new Error('storvsp: sub-channel opened before protocol negotiation');
    return new StorVspChannel(this.options, { version, controller: this.controller });
  }

  /** Handles a batch of packets read in one go; the completions keep the packets' order (each its own copy). */
  handleBatch(packets: Iterable<StorVspIncoming>): StorVspOutgoing[] {
    const out: StorVspOutgoing[] = [];
    for (const p of packets) {
      const c = this.handle(p);
      if (c) out.push({ ...c, payload: c.payload.slice() });
    }
    return out;
  }

  /**
   * As `handle`, but an SRB the disk runs queued returns QUEUED and its completion (a buffer of its
   * own) goes to `done` later, in whatever order the disk completes them.
   */
  handleQueued(packet: StorVspIncoming, done: (out: StorVspOutgoing) => void): StorVspOutgoing | null | typeof QUEUED {
    this.queuedDone = done;
    try {
      return this.handle(packet) ?? (this.queuedNow ? QUEUED : null);
    } finally {
      this.queuedDone = null;
      this.queuedNow = false;
    }
  }
  /** The last handle() inside handleQueued queued its SRB. */
  private queuedNow = false;

  /**
   * Handles one packet; null when no completion may be sent (the guest did not request one). An
   * SRB's completion payload is this channel's reply buffer, valid until the next call: the
   * framework writes it into the ring at once.
   */
  handle(packet: StorVspIncoming): StorVspOutgoing | null {
    // Every vstor request is transactional (OpenVMM rejects others); without a completion the
    // guest could not learn the result, so nothing is executed.
    if (!packet.completionRequested) {
      this.stats.dropped++;
      return null;
    }
    const payload = packet.payload;
    // The reply has the request's size, capped at one vstor_packet (OpenVMM send_completion; Linux
    // drops replies shorter than sizeof(struct vstor_packet)).
    const size = Math.min(Math.max(payload.length, VSTOR_HEADER_SIZE), VSTOR_PACKET_SIZE);
    const isSrb = payload.length >= 4 && payload[0] === VstorOperation.ExecuteSrb && payload[1] === 0 && payload[2] === 0 && payload[3] === 0;
    if (isSrb && this.state.kind === 'ready') return this.srb(packet, payload, this.state.version, size);
    const reply = (status: number, body?: (out: Uint8Array) => void): StorVspOutgoing => this.reply(packet, size, isSrb, status, body);
    try {
      const { operation } = decodeVstorHeader(payload);
      const s = this.state;
      switch (operation) {
        case VstorOperation.BeginInitialization:
          if (s.kind !== 'begin') return reply(NtStatus.InvalidDeviceState);
          this.state = { kind: 'query-version' };
          return reply(NtStatus.Success);
        case VstorOperation.QueryProtocolVersion: {
          if (s.kind !== 'query-version') return reply(NtStatus.InvalidDeviceState);
          const { majorMinor } = decodeProtocolVersion(payload);
          const ok = this.versions.includes(majorMinor);
          if (ok) this.state = { kind: 'query-properties', version: majorMinor };
          return reply(ok ? NtStatus.Success : NtStatus.RevisionMismatch, (o) => encodeProtocolVersion(o, majorMinor));
        }
        case VstorOperation.QueryProperties: {
          if (s.kind !== 'query-properties') return reply(NtStatus.InvalidDeviceState);
          // The properties travel in the reply, which has the request's size: a request too short
          // to hold them cannot be answered with them.
          if (size < CHANNEL_PROPERTIES_END) return reply(NtStatus.InvalidParameter);
          this.state = { kind: 'end', version: s.version };
          // Multi-channel exists from protocol 5.1 (Linux: "Hosts that implement protocol version
          // of 5.1 and above support multi-channel").
          const multi = s.version >= VmstorProtocolVersion.Win8 && this.maxSubChannels > 0;
          return reply(NtStatus.Success, (o) =>
            encodeChannelProperties(o, {
              maxChannelCount: multi ? this.maxSubChannels : 0,
              flags: multi ? STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL : 0,
              maxTransferBytes: this.maxTransferBytes,
            }),
          );
        }
        case VstorOperation.EndInitialization:
          if (s.kind !== 'end') return reply(NtStatus.InvalidDeviceState);
          this.state = { kind: 'ready', version: s.version };
          return reply(NtStatus.Success);
        case VstorOperation.CreateSubChannels: {
          // Linux sends it right after END_INITIALIZATION; OpenVMM also accepts it before.
          if (s.kind !== 'end' && s.kind !== 'ready') return reply(NtStatus.InvalidDeviceState);
          const count = decodeSubChannelCount(payload);
          const multi = s.version >= VmstorProtocolVersion.Win8 && this.maxSubChannels > 0;
          if (!multi || count === 0 || count > this.maxSubChannels) return reply(NtStatus.InvalidParameter);
          const accepted = this.options.onCreateSubChannels?.(count) ?? false;
          return reply(accepted ? NtStatus.Success : NtStatus.InvalidParameter);
        }
        case VstorOperation.ExecuteSrb:
          if (s.kind !== 'ready') return reply(NtStatus.InvalidDeviceState);
          return this.srb(packet, payload, s.version, size);
        case VstorOperation.ResetLun:
        case VstorOperation.ResetAdapter:
        case VstorOperation.ResetBus:
          // Nothing is aborted: a request the disk runs queued still completes with its own status.
          return reply(s.kind === 'ready' ? NtStatus.Success : NtStatus.InvalidDeviceState);
        default:
          // COMPLETE_IO, REMOVE_DEVICE, ENUMERATE_BUS travel host → guest; FCHBA_DATA is for the
          // synthetic Fibre Channel controller only.
          return reply(NtStatus.InvalidDeviceRequest);
      }
    } catch (e) {
      if (e instanceof StorVspProtocolError) return reply(NtStatus.InvalidParameter);
      throw e;
    }
  }

  /** A reply of the request's size carrying `status` (an error: counted, and an SRB gets an SRB error status). */
  private reply(packet: StorVspIncoming, size: number, isSrb: boolean, status: number, body?: (out: Uint8Array) => void): StorVspOutgoing {
    const p = encodeVstorPacket(VstorOperation.CompleteIo, status, size);
    body?.(p);
    if (status !== NtStatus.Success) {
      this.stats.refused++;
      // A refused SRB must not read as "no error" to a guest that looks only at srb_status
      // (Linux storvsc_command_completion).
      if (isSrb && p.length > VmscsiOffset.srbStatus && p[VmscsiOffset.srbStatus] === 0) p[VmscsiOffset.srbStatus] = SrbStatus.InvalidRequest;
    }
    return { kind: 'completion', transactionId: packet.transactionId, payload: p };
  }

  /** EXECUTE_SRB once the protocol is ready: the hot path, one per guest I/O. */
  private srb(packet: StorVspIncoming, payload: Uint8Array, version: number, size: number): StorVspOutgoing | null {
    let done: Uint8Array | null;
    try {
      done = this.executeSrb(payload, packet, version, size);
      if (done === null) return null;
    } catch (e) {
      if (e instanceof StorVspProtocolError) return this.reply(packet, size, true, NtStatus.InvalidParameter);
      // A host-side fault (a bug, or a backend that threw outside read/write/flush) must
      // not take the channel down: the SRB fails and the counter makes the fault visible.
      this.stats.internalErrors++;
      return this.reply(packet, size, true, NtStatus.IoDeviceError, (o) => {
        if (o.length > VmscsiOffset.srbStatus) o[VmscsiOffset.srbStatus] = SrbStatus.InternalError;
      });
    }
    return { kind: 'completion', transactionId: packet.transactionId, payload: done };
  }

  /** ENUMERATE_BUS sent in-band with trans_id 0 makes the guest rescan (after a hot add/remove). */
  enumerateBus(): StorVspOutgoing {
    const version = this.protocolVersion ?? VmstorProtocolVersion.Win10;
    const size = VSTOR_PACKET_SIZE - vmscsiSizeDelta(version);
    return { kind: 'inband', transactionId: 0n, payload: encodeVstorPacket(VstorOperation.EnumerateBus, NtStatus.Success, size) };
  }

  /** The SRB's completion, or null when it runs queued (its completion then goes to queuedDone). */
  private executeSrb(payload: Uint8Array, packet: StorVspIncoming, version: number, size: number): Uint8Array | null {
    this.stats.srbs++;
    const delta = vmscsiSizeDelta(version);
    const fail = (srbStatus: number): Uint8Array => {
      this.stats.refused++;
      return encodeSrbCompletion(payload, size, srbNtStatus(srbStatus), { srbStatus, scsiStatus: 0, dataTransferLength: 0, sense: NO_SENSE }, this.replyBuffer);
    };
    // decodeVmscsiRequest throws StorVspProtocolError for a short packet: handled by the caller.
    const req = decodeVmscsiRequest(payload, delta);
    const dtl = req.dataTransferLength;
    if (req.length < VMSCSI_REQUEST_SIZE - delta) return fail(SrbStatus.InvalidRequest);
    if (req.cdbLength === 0 || req.cdbLength > 16) return fail(SrbStatus.InvalidRequest);
    if (req.dataIn > StorvscRequestType.Unknown) return fail(SrbStatus.InvalidRequest);
    if (dtl > this.maxTransferBytes) return fail(SrbStatus.InvalidRequest);
    if (dtl > 0 && req.dataIn === StorvscRequestType.Unknown) return fail(SrbStatus.InvalidRequest);
    let data = ScsiDataBuffer.empty();
    if (dtl > 0) {
      // Every page the guest named was checked (even past dtl): a guest naming memory it does not
      // have gets an error and no access at all.
      const checked = packet.data ?? gpaRangesBuffer(this.options.memory, packet.ranges ?? []);
      const segments = checked.ok ? gpaDirectPrefix(checked.buffer, dtl) : null;
      if (segments === null) return fail(SrbStatus.InvalidRequest);
      data = new ScsiDataBuffer(segments);
    }
    const direction: ScsiDataDirection = dtl === 0 ? 'none' : req.dataIn === StorvscRequestType.Read ? 'in' : 'out';
    const cdb = req.cdb.subarray(0, req.cdbLength);
    const later = this.queuedDone;
    let r: SrbResult | null;
    if (later === null || dtl < this.minQueuedBytes) r = this.controller.execute(req, cdb, data, direction);
    else {
      // The request's bytes are the framework's, valid only now: the completion is built from a copy.
      const request = payload.slice(0, size);
      const transactionId = packet.transactionId;
      const senseLimit = req.senseInfoLength;
      r = this.controller.start(req, cdb, data, direction, this.minQueuedBytes, (result) => {
        // Runs from a thread-pool callback: nothing may throw out of it (that would end the thread).
        let reply: Uint8Array;
        try {
          reply = this.srbCompletion(request, size, version, senseLimit, result, new Uint8Array(VSTOR_PACKET_SIZE));
        } catch {
          this.stats.internalErrors++;
          reply = encodeSrbCompletion(request, size, NtStatus.IoDeviceError, {
            srbStatus: SrbStatus.InternalError,
            scsiStatus: 0,
            dataTransferLength: 0,
            sense: NO_SENSE,
          });
        }
        later({ kind: 'completion', transactionId, payload: reply });
      });
      if (r === null) {
        this.stats.queued++;
        this.queuedNow = true;
        return null;
      }
    }
    return this.srbCompletion(payload, size, version, req.senseInfoLength, r, this.replyBuffer);
  }

  private srbCompletion(payload: Uint8Array, size: number, version: number, senseLimit: number, r: SrbResult, into: Uint8Array): Uint8Array {
    let sense = r.sense ?? NO_SENSE;
    if (sense.length > 0) sense = sense.subarray(0, Math.min(sense.length, senseLimit, senseBufferSize(version)));
    return encodeSrbCompletion(
      payload,
      size,
      srbNtStatus(r.srbStatus & 0x3f),
      {
        srbStatus: sense.length > 0 ? r.srbStatus | 0x80 : r.srbStatus,
        scsiStatus: r.scsiStatus,
        dataTransferLength: r.transferred,
        sense,
      },
      into,
    );
  }
}

/** handleQueued's answer for an SRB whose completion comes later. */
export const QUEUED = Symbol('queued');

const NO_SENSE = new Uint8Array(0);

/** vstor_packet.status for an SRB completion (OpenVMM convert_srb_status_to_nt_status). */
function srbNtStatus(srb: number): number {
  switch (srb) {
    case SrbStatus.Success:
      return NtStatus.Success;
    case SrbStatus.InvalidLun:
      return NtStatus.DeviceDoesNotExist;
    case SrbStatus.DataOverrun:
      return NtStatus.BufferOverflow;
    default:
      return NtStatus.IoDeviceError;
  }
}
