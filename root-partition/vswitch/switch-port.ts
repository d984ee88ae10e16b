import { ETH_JUMBO_MTU, ETH_MTU, VLAN_ID_MAX, VLAN_ID_MIN, formatMac, parseMac } from './ethernet.ts';

/**
 * Port kinds, after NDIS_SWITCH_PORT_TYPE (ntddndis.h): Generic 0, External 1, Synthetic 2,
 * Emulated 3, Internal 4. A synthetic port (netvsc) may carry jumbo frames; an emulated one
 * (NE2000) never more than 1500 bytes of payload.
 */
export const SwitchPortKind = { Generic: 0, External: 1, Synthetic: 2, Emulated: 3, Internal: 4 } as const;
export type SwitchPortKind = (typeof SwitchPortKind)[keyof typeof SwitchPortKind];

/**
 * What the NIC behind a port accepts, in NDIS packet-filter terms (OID_GEN_CURRENT_PACKET_FILTER
 * bits: DIRECTED 0x1, MULTICAST 0x2, ALL_MULTICAST 0x4, BROADCAST 0x8, PROMISCUOUS 0x20). The
 * NE2000 maps its RCR onto the same bits; `multicast` answers for the MULTICAST bit (a list or
 * the DP8390 hash), absent meaning "none of them".
 */
export const PacketFilter = { Directed: 0x1, Multicast: 0x2, AllMulticast: 0x4, Broadcast: 0x8, Promiscuous: 0x20 } as const;

export interface ReceiveFilter {
  bits: number;
  multicast?: (frame: Uint8Array) => boolean;
}

/** Why the switch dropped a frame: each reason has its own counter. */
export type DropReason = 'runt' | 'mtu' | 'spoofed' | 'vlan' | 'filtered' | 'full' | 'down';
export const DROP_REASONS: readonly DropReason[] = ['runt', 'mtu', 'spoofed', 'vlan', 'filtered', 'full', 'down'];

export interface PortCounters {
  /** Frames and bytes the NIC handed to the switch. */
  ingressFrames: number;
  ingressBytes: number;
  ingressUnicast: number;
  ingressMulticast: number;
  ingressBroadcast: number;
  /** Frames and bytes the switch handed to the NIC. */
  egressFrames: number;
  egressBytes: number;
  /** Ingress frames sent to every other port (group or unknown destination). */
  flooded: number;
  drops: Record<DropReason, number>;
}

export function newPortCounters(): PortCounters {
  const drops = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) drops[r] = 0;
  return { ingressFrames: 0, ingressBytes: 0, ingressUnicast: 0, ingressMulticast: 0, ingressBroadcast: 0, egressFrames: 0, egressBytes: 0, flooded: 0, drops };
}

/**
 * Hands a frame to the NIC behind the port. `frame` is only valid during the call (copy what you
 * keep). Returns false when the NIC has no room (its receive ring is full): the frame is dropped
 * and counted, as a real switch drops on a full port.
 */
export type FrameSink = (frame: Uint8Array) => boolean;

export interface SwitchPortOptions {
  kind: SwitchPortKind;
  /** The vNIC's MAC ("00:15:5d:…"); required for VM ports, which may only send from it. */
  mac?: string;
  allowMacSpoofing?: boolean;
  /** Access VLAN id (1–4094); absent = untagged. Ports forward only within their VLAN. */
  vlanId?: number;
  /** Payload MTU: 1500, or up to 9000 on a synthetic, internal or external port. */
  mtu?: number;
  name?: string;
}

export class SwitchPort {
  readonly kind: SwitchPortKind;
  readonly mac: string | undefined;
  readonly allowMacSpoofing: boolean;
  readonly vlanId: number | undefined;
  readonly mtu: number;
  readonly name: string;
  readonly counters = newPortCounters();
  /** Default: directed + broadcast + multicast-all until the NIC says otherwise. */
  filter: ReceiveFilter = { bits: PacketFilter.Directed | PacketFilter.Broadcast | PacketFilter.AllMulticast };
  up = true;

  constructor(
    readonly id: number,
    opts: SwitchPortOptions,
    readonly sink: FrameSink,
  ) {
    this.kind = opts.kind;
    this.mac = opts.mac === undefined ? undefined : formatMac(parseMac(opts.mac));
    this.allowMacSpoofing = opts.allowMacSpoofing ?? false;
    const vmPort = this.kind === SwitchPortKind.Synthetic || this.kind === SwitchPortKind.Emulated;
    if (vmPort && this.mac === undefined) throw new RangeError('a VM port needs its MAC address');
    if (opts.vlanId !== undefined && (!Number.isInteger(opts.vlanId) || opts.vlanId < VLAN_ID_MIN || opts.vlanId > VLAN_ID_MAX)) {
      throw new RangeError(`VLAN id ${opts.vlanId} is outside ${VLAN_ID_MIN}–${VLAN_ID_MAX}`);
    }
    this.vlanId = opts.vlanId;
    const maxMtu = this.kind === SwitchPortKind.Emulated ? ETH_MTU : ETH_JUMBO_MTU;
    const mtu = opts.mtu ?? ETH_MTU;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > maxMtu) throw new RangeError(`MTU ${mtu} is outside 68–${maxMtu} for this port kind`);
    this.mtu = mtu;
    this.name = opts.name ?? `port${id}`;
  }

  /** Whether the NIC's receive filter admits a frame with this destination class. */
  admits(frame: Uint8Array, group: boolean, broadcast: boolean): boolean {
    const bits = this.filter.bits;
    if (bits & PacketFilter.Promiscuous) return true;
    if (broadcast) return (bits & PacketFilter.Broadcast) !== 0;
    if (group) return (bits & PacketFilter.AllMulticast) !== 0 || ((bits & PacketFilter.Multicast) !== 0 && this.filter.multicast?.(frame) === true);
    if (!(bits & PacketFilter.Directed)) return false;
    // A port without its own MAC (internal/external uplink) takes whatever is forwarded to it.
    return this.mac === undefined || this.mac === formatMac(frame, 0);
  }
}
