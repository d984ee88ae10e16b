import { GuestMemory } from '../../hypervisor/guest-memory.ts';
import { NetVspChannel, type NetVspChannelOptions, type NetVspIncoming, type NetVspSink } from '../../root-partition/vsp/netvsp/netvsp-channel.ts';
import { decodeNetVspChannel, encodeNetVspChannel, type NetVspSavedChannel } from '../../root-partition/vsp/netvsp/netvsp-saved-state.ts';
import { decodeTransferPageHeaderBytes } from './netvsp-wire.ts';

export interface SentTransferPages {
  transactionId: bigint;
  header: Uint8Array;
  payload: Uint8Array;
  ranges: { byteCount: number; byteOffset: number }[];
}

/**
 * A NetVspChannel over real guest memory with GPADLs as page lists: the receive buffer at
 * RX_GPA (GPADL 0x100), the send buffer at TX_GPA (GPADL 0x101). What the channel sends is
 * recorded; `ringFull` makes the sink refuse like a full ring.
 */
export class NetVspRig {
  static readonly RX_GPA = 0x100000;
  static readonly TX_GPA = 0x200000;
  readonly memory = new GuestMemory(4 << 20);
  readonly completions: { transactionId: bigint; payload: Uint8Array }[] = [];
  readonly transferPages: SentTransferPages[] = [];
  /** In-band packets the host sent (SEND_INDIRECTION_TABLE). */
  readonly inband: Uint8Array[] = [];
  readonly transmitted: { frame: Uint8Array; vlanId: number | undefined }[] = [];
  readonly gpadls = new Map<number, number[]>();
  ringFull = false;
  readonly options: NetVspChannelOptions;
  /** Replaced by `restore` (a new channel over the same memory, as in a restoring worker). */
  channel: NetVspChannel;

  /** SUBCHANNEL grants the channel reported (onSubChannelsGranted). */
  readonly granted: number[] = [];

  constructor(opts: { mac?: Uint8Array; allowJumbo?: boolean; rxPages?: number; txPages?: number; scatterRx?: boolean; maxChannels?: number } = {}) {
    const rxPages = opts.rxPages ?? 64;
    const rx = Array.from({ length: rxPages }, (_, i) => NetVspRig.RX_GPA / 4096 + (opts.scatterRx ? (i * 7) % rxPages : i));
    this.gpadls.set(0x100, rx);
    this.gpadls.set(
      0x101,
      Array.from({ length: opts.txPages ?? 16 }, (_, i) => NetVspRig.TX_GPA / 4096 + i),
    );
    this.options = {
      memory: this.memory,
      mac: opts.mac ?? Uint8Array.from([0, 0x15, 0x5d, 0, 0, 1]),
      allowJumbo: opts.allowJumbo,
      resolveGpadl: (h) => this.gpadls.get(h),
      sink: {
        complete: (transactionId, payload) => {
          if (this.ringFull) return false;
          this.completions.push({ transactionId, payload: payload.slice() });
          return true;
        },
        sendTransferPages: (transactionId, header, payload) => {
          if (this.ringFull) return false;
          this.transferPages.push({ transactionId, header: header.slice(), payload: payload.slice(), ranges: decodeTransferPageHeaderBytes(header) });
          return true;
        },
        sendInband: (payload) => {
          if (this.ringFull) return false;
          this.inband.push(payload.slice());
          return true;
        },
      },
      onTransmit: (frame, vlanId) => this.transmitted.push({ frame: frame.slice(), vlanId }),
      maxChannels: opts.maxChannels,
      onSubChannelsGranted: (count) => this.granted.push(count),
    };
    this.channel = new NetVspChannel(this.options);
  }

  /** Saves the channel's state (encoded), then continues on a channel restored from those bytes. */
  saveAndRestore(mutate?: (s: NetVspSavedChannel) => void): void {
    const saved = decodeNetVspChannel(encodeNetVspChannel(this.channel.saveState()));
    mutate?.(saved);
    this.channel = NetVspChannel.restored(this.options, decodeNetVspChannel(encodeNetVspChannel(saved)));
  }

  /** Opens sub-channel `index` on the channel: what the host sends on it is recorded in the returned rig. */
  openSubChannel(index: number): SubChannelRig {
    const sub = new SubChannelRig(this, index);
    if (!this.channel.attachSubChannel(index, sub.sink)) throw new Error(`sub-channel ${index} refused`);
    return sub;
  }

  send(payload: Uint8Array, opts: { completionRequested?: boolean; transactionId?: bigint; gpa?: Uint8Array[] | null; channel?: number } = {}): void {
    const p: NetVspIncoming = {
      kind: opts.gpa !== undefined ? 'gpa-direct' : 'inband',
      transactionId: opts.transactionId ?? 7n,
      completionRequested: opts.completionRequested ?? true,
      payload,
      gpaSegments: opts.gpa,
    };
    this.channel.handle(p, opts.channel ?? 0);
  }

  completeReceive(transactionId: bigint): void {
    this.channel.handle({ kind: 'completion', transactionId, completionRequested: false, payload: u32s(108, 1) });
  }

  /** Completes every transfer-page packet sent so far (as a guest that read them all). */
  completeAll(): void {
    for (const tp of this.transferPages.splice(0)) this.completeReceive(tp.transactionId);
  }

  /** Bytes of the receive buffer at a sub-allocation's offset (page list honoured). */
  rx(offset: number, length: number): Uint8Array {
    const pages = this.gpadls.get(0x100)!;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const o = offset + i;
      out[i] = this.memory.u8[pages[Math.floor(o / 4096)]! * 4096 + (o % 4096)]!;
    }
    return out;
  }

  /** Runs the Linux initialization (netvsc_connect_vsp, rndis_filter_device_add) through RNDIS INITIALIZE and the packet filter. */
  linuxInit(filter = 0x0d): void {
    this.send(u32s(1, 0x60001, 0x60001, 0, 0, 0, 0, 0, 0, 0));
    this.send(u32s(125, 1514, 0, 0xac, 0, 0, 0, 0, 0, 0), { completionRequested: false });
    this.send(u32s(100, 6, 30, 0, 0, 0, 0, 0, 0, 0), { completionRequested: false });
    this.send(withU16(u32s(101, 0x100, 0, 0, 0, 0, 0, 0, 0, 0), 8, 0xcafe));
    this.send(u32s(104, 0x101, 0, 0, 0, 0, 0, 0, 0, 0));
    this.control(u32s(2, 24, 1, 1, 0, 0x4000));
    this.control(setMsg(2, 0x0001010e, u32s(filter)));
  }

  /** An RNDIS control message through send section 0. */
  control(rndis: Uint8Array, section = 0): void {
    this.memory.u8.set(rndis, NetVspRig.TX_GPA + section * 6144);
    this.send(u32s(107, 1, section, rndis.length, 0, 0, 0, 0, 0, 0));
  }

  /** The RNDIS message in the last control transfer-page packet, and its slot completed. */
  lastControlMessage(): Uint8Array {
    const tp = this.transferPages.at(-1)!;
    const r = tp.ranges[0]!;
    const bytes = this.rx(r.byteOffset, r.byteCount);
    this.completeReceive(tp.transactionId);
    return bytes;
  }
}

export function u32s(...v: number[]): Uint8Array {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
}

export function withU16(b: Uint8Array, at: number, v: number): Uint8Array {
  new DataView(b.buffer, b.byteOffset).setUint16(at, v, true);
  return b;
}

/** REMOTE_NDIS_SET_MSG with the data at @28 (InformationBufferOffset 20). */
export function setMsg(requestId: number, oid: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(28 + data.length);
  b.set(u32s(5, 28 + data.length, requestId, oid, data.length, 20, 0));
  b.set(data, 28);
  return b;
}

export function queryMsg(requestId: number, oid: number): Uint8Array {
  return u32s(4, 28, requestId, oid, 0, 20, 0);
}

/** A Linux-style PACKET_MSG: header 44 bytes, DataOffset 36, PPI offset 36 / length 0, frame. */
export function packetMsg(frame: Uint8Array, align = 1): Uint8Array {
  const len = Math.ceil((44 + frame.length) / align) * align;
  const b = new Uint8Array(len);
  b.set(u32s(1, len, 36, frame.length, 0, 0, 0, 36, 0, 0, 0));
  b.set(frame, 44);
  return b;
}

/** The guest's end of one sub-channel on a NetVspRig: its completions and transfer-page packets. */
export class SubChannelRig {
  readonly completions: { transactionId: bigint; payload: Uint8Array }[] = [];
  readonly transferPages: SentTransferPages[] = [];
  readonly sink: NetVspSink = {
    complete: (transactionId, payload) => {
      this.completions.push({ transactionId, payload: payload.slice() });
      return true;
    },
    sendTransferPages: (transactionId, header, payload) => {
      this.transferPages.push({ transactionId, header: header.slice(), payload: payload.slice(), ranges: decodeTransferPageHeaderBytes(header) });
      return true;
    },
    sendInband: () => {
      throw new Error('in-band packets go on the primary channel');
    },
  };

  constructor(
    private readonly rig: NetVspRig,
    readonly index: number,
  ) {}

  send(payload: Uint8Array, opts: { transactionId?: bigint; gpa?: Uint8Array[] | null } = {}): void {
    this.rig.send(payload, { ...opts, channel: this.index });
  }

  completeReceive(transactionId: bigint): void {
    this.rig.channel.handle({ kind: 'completion', transactionId, completionRequested: false, payload: u32s(108, 1) }, this.index);
  }
}
