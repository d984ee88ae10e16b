/**
 * The host half of one IC device on the VSP framework. The host drives every IC conversation
 * (Linux drivers/hv/hv_util.c): once the guest opens the channel it sends NEGOTIATE; afterwards
 * each service sends requests as VM_PKT_DATA_INBAND with a fresh transaction id, one at a time
 * (Linux keeps one receive buffer per IC channel and answers in place), and the guest answers
 * with VM_PKT_DATA_INBAND echoing the id and the icmsg flags TRANSACTION | RESPONSE.
 *
 * The guest is hostile: every answer is bounds-checked; one that does not decode, answers no
 * outstanding request, or has the wrong type is counted, reported, and dropped; a guest request
 * (the guest never initiates an IC transaction) is answered with E_FAIL, as Linux answers an
 * unknown message type. The channel keeps serving in every case.
 */
import { HvError } from '../../../hypervisor/hv-error.ts';
import { VmbusPacketType, type ReceivedPacket } from '../../../vmbus/ring/index.ts';
import type { PacketBatch, VspChannel } from '../../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../../vmbus/host/vsp.ts';
import type { ChannelOfferSpec } from '../../../vmbus/server/server-types.ts';
import {
  decodeIcMessage,
  decodeNegotiateResponse,
  encodeIcMessage,
  encodeNegotiate,
  IC_FRAMEWORK_VERSIONS,
  IcFlag,
  IcMessageType,
  IcStatus,
  type IcHeader,
  type IcVersion,
} from './ic-protocol.ts';
import type { IcServiceSpec } from './ic-services.ts';
import { decodeIcState, encodeIcState, icStateError, type IcSavedState } from './ic-saved-state.ts';

export type IcReply = { kind: 'reply'; status: number; header: IcHeader; body: Uint8Array } | { kind: 'timeout' } | { kind: 'unavailable'; reason: string };

export interface IcVspOptions {
  /** How long one request waits for its answer before it resolves as a timeout (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Where protocol errors go; the device keeps serving after each. */
  log?: (error: HvError) => void;
}

export interface IcStats {
  requestsSent: number;
  answers: number;
  timeouts: number;
  /** Guest packets refused: undecodable, unsolicited, stale, or of the wrong type. */
  invalid: number;
  /** Answers that came after their request had timed out: taken quietly, not counted invalid. */
  late: number;
}

interface Pending {
  type: number;
  body: Uint8Array;
  timeoutMs: number;
  resolve: (r: IcReply) => void;
  transId?: number;
  timer?: NodeJS.Timeout;
  /** Sent before a save: its caller was answered "unavailable"; the guest's answer is absorbed quietly. */
  orphan?: boolean;
}

const SAVED = 'the VM was saved';

/** Timed-out transactions whose late answers are still recognised. */
const TIMED_OUT_REMEMBERED = 8;

export abstract class IcVsp implements Vsp {
  readonly offer: ChannelOfferSpec;
  readonly maxReplyBytes: number;
  readonly maxPacketBytes: number;
  readonly stats: IcStats = { requestsSent: 0, answers: 0, timeouts: 0, invalid: 0, late: 0 };
  /**
   * Transaction ids of the last requests that timed out: a slow guest (or a loaded host) answers
   * them late, which is not a protocol violation. Bounded: only the most recent few are known.
   */
  private readonly timedOut: number[] = [];
  /** Versions agreed in NEGOTIATE; null until then (and after the channel closes). */
  negotiated: { framework: IcVersion; message: IcVersion } | null = null;
  protected channel: VspChannel | null = null;
  protected readonly requestTimeoutMs: number;
  private readonly log: (error: HvError) => void;
  private readonly queue: Pending[] = [];
  private inflight: Pending | null = null;
  private nextTransId = 1;
  private icTransaction = 0;
  /** A save was taken: no request is sent and no timer runs until resumeAfterSave (or a restore). */
  private quiesced = false;

  constructor(
    readonly spec: IcServiceSpec,
    options: IcVspOptions = {},
  ) {
    this.offer = { interfaceType: spec.interfaceType, interfaceInstance: spec.interfaceInstance };
    this.maxReplyBytes = spec.maxMessageBytes;
    // A Linux guest answers with the whole buffer it received; allow the VMBus header on top.
    this.maxPacketBytes = spec.maxMessageBytes + 64;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.log = options.log ?? ((e) => console.error(`ic[${spec.name}] ${e.code}: ${e.message}`));
  }

  /** True once NEGOTIATE succeeded on an open channel. */
  get ready(): boolean {
    return this.channel !== null && this.negotiated !== null;
  }

  onOpen(channel: VspChannel): number {
    this.channel = channel;
    this.negotiated = null;
    // Negotiate after OPENCHANNEL_RESULT has gone out, as the first message on the channel.
    setImmediate(() => {
      if (this.channel === channel && !this.quiesced) void this.negotiate();
    });
    return 0;
  }

  onClose(channel: VspChannel): void {
    if (this.channel !== channel) return;
    this.channel = null;
    this.negotiated = null;
    this.failAll('the channel closed');
    this.channelClosed();
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    for (let p = batch.next(); p !== null; p = batch.next()) this.onPacket(channel, p);
  }

  /** Hooks for the services. */
  protected abstract negotiatedHook(): void;
  protected channelClosed(): void {}
  /** A save was taken: stop the service's own timers (negotiatedHook starts them again). */
  protected pauseService(): void {}
  /** The service's part of the saved state. */
  protected saveService(): Partial<IcSavedState> {
    return {};
  }
  /** Checks the service's part (throwing icStateError) and returns the step that applies it. */
  protected restoreService(_s: IcSavedState): () => void {
    return () => {};
  }

  // ---- saved state (vmbus/host/vsp.ts) --------------------------------------------------------

  quiesce(): void {
    if (this.quiesced) return;
    this.quiesced = true;
    const p = this.inflight;
    if (p) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.orphan = true;
      const resolve = p.resolve;
      p.resolve = () => {};
      resolve({ kind: 'unavailable', reason: SAVED });
    }
    for (const q of this.queue.splice(0)) q.resolve({ kind: 'unavailable', reason: SAVED });
    this.pauseService();
  }

  resumeAfterSave(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.restart();
  }

  saveChannel(channel: VspChannel): Uint8Array {
    if (channel !== this.channel) throw icStateError(this.spec.name, `relid ${channel.relid} is not this service's channel`);
    const p = this.inflight;
    return encodeIcState({
      negotiated: this.negotiated,
      nextTransId: this.nextTransId,
      icTransaction: this.icTransaction,
      inflight: p ? { transId: p.transId!, type: p.type } : null,
      ...this.saveService(),
    });
  }

  restoreChannel(channel: VspChannel, state: Uint8Array | undefined): () => void {
    if (state === undefined) throw icStateError(this.spec.name, `no state for open relid ${channel.relid}`);
    if (channel.subChannelIndex !== 0) throw icStateError(this.spec.name, `sub-channel ${channel.subChannelIndex}: IC devices have none`);
    if (this.channel !== null) throw icStateError(this.spec.name, 'the channel is already open');
    const s = decodeIcState(state, this.spec);
    const applyService = this.restoreService(s);
    return () => {
      this.channel = channel;
      this.negotiated = s.negotiated;
      this.nextTransId = s.nextTransId;
      this.icTransaction = s.icTransaction;
      this.inflight = s.inflight
        ? { type: s.inflight.type, body: new Uint8Array(0), timeoutMs: this.requestTimeoutMs, resolve: () => {}, transId: s.inflight.transId, orphan: true }
        : null;
      this.quiesced = false;
      applyService();
      this.restart();
    };
  }

  /** After a restore or an abandoned save: the in-flight request's time-out runs again, then as after open or negotiation. */
  private restart(): void {
    const p = this.inflight;
    if (p) {
      p.timer = setTimeout(() => this.expire(p), p.timeoutMs);
      p.timer.unref?.();
    }
    if (this.channel === null) return;
    if (this.negotiated) this.negotiatedHook();
    else if (p === null) void this.negotiate();
    this.pump();
  }

  /** Queues a request of this service's message type; resolves with the guest's answer, a timeout, or unavailable. */
  protected request(body: Uint8Array, timeoutMs = this.requestTimeoutMs): Promise<IcReply> {
    if (this.quiesced) return Promise.resolve({ kind: 'unavailable', reason: SAVED });
    if (!this.ready) return Promise.resolve({ kind: 'unavailable', reason: this.channel ? 'not negotiated yet' : 'the guest has not opened the channel' });
    return this.enqueue(this.spec.messageType, body, timeoutMs);
  }

  private enqueue(type: number, body: Uint8Array, timeoutMs: number): Promise<IcReply> {
    return new Promise((resolve) => {
      this.queue.push({ type, body, timeoutMs, resolve });
      this.pump();
    });
  }

  private async negotiate(): Promise<void> {
    const versions = this.spec.messageVersions;
    this.negotiationAnswered(await this.enqueue(IcMessageType.Negotiate, encodeNegotiate(IC_FRAMEWORK_VERSIONS, versions), this.requestTimeoutMs));
  }

  private negotiationAnswered(r: IcReply): void {
    if (r.kind !== 'reply') return;
    const out = decodeNegotiateResponse(r.body, IC_FRAMEWORK_VERSIONS, this.spec.messageVersions);
    if (!out.ok) return this.report('IC_NEGOTIATE_FAILED', out.reason);
    this.negotiated = { framework: out.framework, message: out.message };
    this.negotiatedHook();
  }

  private pump(): void {
    const channel = this.channel;
    if (this.inflight !== null || channel === null || this.quiesced) return;
    const next = this.queue.shift();
    if (!next) return;
    const transId = this.nextTransId++;
    this.icTransaction = (this.icTransaction + 1) & 0xff;
    const header: IcHeader = {
      framework: this.negotiated?.framework ?? IC_FRAMEWORK_VERSIONS[IC_FRAMEWORK_VERSIONS.length - 1]!,
      type: next.type,
      message: next.type === IcMessageType.Negotiate ? { major: 0, minor: 0 } : this.negotiated!.message,
      bodySize: next.body.length,
      status: IcStatus.Ok,
      transactionId: this.icTransaction,
      flags: IcFlag.Transaction | IcFlag.Request,
    };
    next.transId = transId;
    this.inflight = next;
    next.timer = setTimeout(() => this.expire(next), next.timeoutMs);
    next.timer.unref?.();
    if (!channel.sendInband(transId, 0, encodeIcMessage(header, next.body))) {
      // The guest is not reading its ring: to the caller this is the same as no answer.
      this.stats.timeouts++;
      this.finish(next, { kind: 'timeout' });
      return;
    }
    this.stats.requestsSent++;
  }

  private expire(p: Pending): void {
    if (this.inflight !== p) return;
    this.stats.timeouts++;
    if (p.transId !== undefined) {
      this.timedOut.push(p.transId);
      if (this.timedOut.length > TIMED_OUT_REMEMBERED) this.timedOut.shift();
    }
    this.finish(p, { kind: 'timeout' });
  }

  private finish(p: Pending, r: IcReply): void {
    clearTimeout(p.timer);
    if (this.inflight === p) this.inflight = null;
    // A NEGOTIATE sent before a save still negotiates the channel when its answer comes after it.
    if (p.orphan && p.type === IcMessageType.Negotiate) this.negotiationAnswered(r);
    p.resolve(r);
    this.pump();
  }

  private failAll(reason: string): void {
    const all = [...(this.inflight ? [this.inflight] : []), ...this.queue.splice(0)];
    this.inflight = null;
    for (const p of all) {
      clearTimeout(p.timer);
      p.resolve({ kind: 'unavailable', reason });
    }
  }

  private onPacket(channel: VspChannel, p: ReceivedPacket): void {
    if (p.type !== VmbusPacketType.DataInband) return this.invalid(`VMBus packet type ${p.type}, not in-band data`);
    const bytes = p.bytes.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
    const m = decodeIcMessage(bytes);
    if (!m.ok) return this.invalid(m.reason);
    const h = m.header;
    if ((h.flags & IcFlag.Response) === 0) {
      // The guest never starts an IC transaction: answer E_FAIL in place, as Linux does for an unknown type.
      this.invalid(`unsolicited IC request of type ${h.type}`);
      const reply = new Uint8Array(bytes);
      new DataView(reply.buffer).setUint32(20, IcStatus.Fail, true);
      reply[25] = IcFlag.Transaction | IcFlag.Response;
      channel.sendInband(p.transIdLo, p.transIdHi, reply);
      return;
    }
    const want = this.inflight;
    if (want === null || p.transIdLo !== want.transId || p.transIdHi !== 0) {
      const late = p.transIdHi === 0 ? this.timedOut.indexOf(p.transIdLo) : -1;
      if (late >= 0) {
        this.timedOut.splice(late, 1);
        this.stats.late++;
        return;
      }
      return this.invalid(`answer to transaction ${p.transIdLo} which is not outstanding`);
    }
    if (h.type !== want.type) return this.invalid(`answer of type ${h.type} to a request of type ${want.type}`);
    this.stats.answers++;
    this.finish(want, { kind: 'reply', status: h.status, header: h, body: new Uint8Array(m.body) });
  }

  private invalid(reason: string): void {
    this.stats.invalid++;
    this.report('IC_INVALID_MESSAGE', reason);
  }

  protected report(code: string, message: string): void {
    this.log(new HvError(code, `${this.spec.name}: ${message}`));
  }

  /** Stops timers and answers every waiting caller; the channel itself belongs to the VMBus host. */
  dispose(): void {
    this.failAll('disposed');
    this.channelClosed();
  }
}
