import { ETH_HEADER_BYTES, VLAN_TAG_BYTES, formatMac, frameVlanTag, isBroadcastMac, isGroupMac } from './ethernet.ts';
import { MacTable } from './mac-table.ts';
import { SwitchPort, SwitchPortKind, type DropReason, type FrameSink, type SwitchPortOptions } from './switch-port.ts';

/** Switch types, after FWP_VSWITCH_NETWORK_TYPE (fwptypes.h): Private 1, Internal 2, External 3. */
export const SwitchType = { Private: 1, Internal: 2, External: 3 } as const;
export type SwitchType = (typeof SwitchType)[keyof typeof SwitchType];

export interface VirtualSwitchOptions {
  name: string;
  type?: SwitchType;
  agingMs?: number;
  macTableLimit?: number;
  /** Most ports a switch takes (each port holds host memory); default 256. */
  maxPorts?: number;
  /** Clock for learning and aging (milliseconds); injected so tests control time. */
  now?: () => number;
}

/**
 * A learning Ethernet bridge (IEEE 802.1D, as Linux net/bridge does it): learns the source MAC of every
 * frame entering a port, forwards a known unicast to its port, floods group and unknown
 * destinations to every other port of the same VLAN, and counts everything per port. Frames
 * are delivered synchronously through each port's sink; the transport between processes
 * (vswitch-link) sits in front of this and does not change it.
 */
export class VirtualSwitch {
  readonly name: string;
  readonly type: SwitchType;
  readonly table: MacTable;
  private readonly ports = new Map<number, SwitchPort>();
  private readonly maxPorts: number;
  private readonly now: () => number;
  private nextPortId = 1;
  /**
   * Sees every frame a port hands the switch, before any check (a tap on the wire, for the
   * network benchmark's timestamps); the frame is valid during the call only.
   */
  onIngress: ((from: number, frame: Uint8Array) => void) | undefined = undefined;

  constructor(opts: VirtualSwitchOptions) {
    this.name = opts.name;
    this.type = opts.type ?? SwitchType.Private;
    this.table = new MacTable(opts.agingMs, opts.macTableLimit);
    this.maxPorts = opts.maxPorts ?? 256;
    this.now = opts.now ?? (() => performance.now());
  }

  addPort(opts: SwitchPortOptions, sink: FrameSink): SwitchPort {
    if (this.ports.size >= this.maxPorts) throw new RangeError(`switch ${this.name} already has ${this.maxPorts} ports`);
    const needsHostSide = opts.kind === SwitchPortKind.Internal || opts.kind === SwitchPortKind.External;
    if (needsHostSide && this.type === SwitchType.Private) throw new RangeError('a private switch has VM ports only');
    if (opts.kind === SwitchPortKind.External && this.type !== SwitchType.External) throw new RangeError('only an external switch has an uplink');
    for (const p of this.ports.values()) {
      if (needsHostSide && p.kind === opts.kind)
        throw new RangeError(`switch ${this.name} already has its ${opts.kind === SwitchPortKind.Internal ? 'internal' : 'external'} port`);
    }
    const port = new SwitchPort(this.nextPortId++, opts, sink);
    this.ports.set(port.id, port);
    return port;
  }

  /** Takes a port off the switch: its learned addresses go with it. */
  removePort(id: number): void {
    if (!this.ports.delete(id)) return;
    this.table.forgetPort(id);
  }

  port(id: number): SwitchPort | undefined {
    return this.ports.get(id);
  }

  allPorts(): SwitchPort[] {
    return [...this.ports.values()];
  }

  /**
   * A frame entering the switch from port `from`. Returns the number of ports it was delivered to.
   * The frame is read only during the call.
   */
  ingress(from: number, frame: Uint8Array): number {
    const src = this.ports.get(from);
    if (!src) return 0;
    this.onIngress?.(from, frame);
    const c = src.counters;
    if (!src.up) return this.drop(src, 'down');
    if (frame.length < ETH_HEADER_BYTES) return this.drop(src, 'runt');
    const tag = frameVlanTag(frame);
    // Access ports take untagged frames only: a guest may not hop VLANs by tagging.
    if (tag !== undefined && src.vlanId !== undefined) return this.drop(src, 'vlan');
    const payload = frame.length - ETH_HEADER_BYTES - (tag !== undefined ? VLAN_TAG_BYTES : 0);
    if (payload > src.mtu) return this.drop(src, 'mtu');
    const srcMac = formatMac(frame, 6);
    const vmPort = src.kind === SwitchPortKind.Synthetic || src.kind === SwitchPortKind.Emulated;
    if (vmPort && !src.allowMacSpoofing && srcMac !== src.mac) return this.drop(src, 'spoofed');
    c.ingressFrames++;
    c.ingressBytes += frame.length;
    const now = this.now();
    if (!isGroupMac(frame, 6)) this.table.learn(srcMac, src.id, now);
    const group = isGroupMac(frame, 0);
    const broadcast = group && isBroadcastMac(frame, 0);
    if (broadcast) c.ingressBroadcast++;
    else if (group) c.ingressMulticast++;
    else c.ingressUnicast++;
    if (!group) {
      const to = this.table.lookup(formatMac(frame, 0), now);
      if (to !== undefined) {
        const dst = this.ports.get(to);
        if (to === src.id || !dst) return 0; // the destination is on the port it came from
        if (dst.vlanId !== src.vlanId) {
          dst.counters.drops.vlan++;
          return 0;
        }
        return this.deliver(dst, frame, payload, false, false) ? 1 : 0;
      }
    }
    c.flooded++;
    let n = 0;
    for (const dst of this.ports.values()) {
      if (dst === src || dst.vlanId !== src.vlanId) continue;
      if (this.deliver(dst, frame, payload, group, broadcast)) n++;
    }
    return n;
  }

  /** Removes aged-out MAC entries (call periodically; lookups ignore aged entries anyway). */
  age(): number {
    return this.table.sweep(this.now());
  }

  private deliver(dst: SwitchPort, frame: Uint8Array, payload: number, group: boolean, broadcast: boolean): boolean {
    const d = dst.counters.drops;
    if (!dst.up) return (d.down++, false);
    if (payload > dst.mtu) return (d.mtu++, false);
    if (!dst.admits(frame, group, broadcast)) return (d.filtered++, false);
    if (!dst.sink(frame)) return (d.full++, false);
    dst.counters.egressFrames++;
    dst.counters.egressBytes += frame.length;
    return true;
  }

  private drop(port: SwitchPort, reason: DropReason): number {
    port.counters.drops[reason]++;
    return 0;
  }
}
