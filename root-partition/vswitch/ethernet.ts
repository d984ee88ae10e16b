/**
 * Ethernet II framing facts the switch needs (IEEE 802.3, 802.1Q). Frames here carry no FCS:
 * a frame is destination (6) + source (6) + EtherType (2) + payload, as NICs hand it to software.
 */
export const ETH_HEADER_BYTES = 14;
/** Largest payload of a standard frame, and of a jumbo frame on a synthetic port. */
export const ETH_MTU = 1500;
export const ETH_JUMBO_MTU = 9000;
/** 802.1Q tag protocol identifier (TPID) at bytes 12–13 of a tagged frame. */
export const ETHERTYPE_VLAN = 0x8100;
export const VLAN_TAG_BYTES = 4;
/** Valid 802.1Q VLAN ids (0 = priority tag only, 4095 reserved). */
export const VLAN_ID_MIN = 1;
export const VLAN_ID_MAX = 4094;

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';

/** A MAC address as six bytes, rendered lower-case colon-separated: the switch's table key. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    const b = bytes[offset + i]!;
    s += (i ? ':' : '') + (b < 16 ? '0' : '') + b.toString(16);
  }
  return s;
}

/** Parses "00:15:5d:01:02:03" or "00-15-5D-01-02-03" (the Hyper-V spelling). Throws RangeError otherwise. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new RangeError(`not a MAC address: ${JSON.stringify(text)}`);
  return Uint8Array.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

/** The individual/group bit (bit 0 of the first byte): set for multicast and broadcast. */
export function isGroupMac(bytes: Uint8Array, offset = 0): boolean {
  return (bytes[offset]! & 1) !== 0;
}

export function isBroadcastMac(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 6; i++) if (bytes[offset + i] !== 0xff) return false;
  return true;
}

/** The 802.1Q VLAN id of a tagged frame, or undefined for an untagged one. */
export function frameVlanTag(frame: Uint8Array): number | undefined {
  if (frame.length < ETH_HEADER_BYTES + VLAN_TAG_BYTES) return undefined;
  if (((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_VLAN) return undefined;
  return ((frame[14]! << 8) | frame[15]!) & 0xfff;
}
