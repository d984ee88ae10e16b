import { parseMac } from './ethernet.ts';
import { SwitchPortKind } from './switch-port.ts';

/**
 * The first record a port's owner sends on its connection (UTF-8 JSON): which NIC it is. The
 * switch answers with `{ "port": id }` or `{ "error": "…" }` and closes on an error.
 */
export interface SwitchHello {
  kind: 'synthetic' | 'emulated';
  mac: string;
  name?: string;
  vlanId?: number;
  mtu?: number;
  allowMacSpoofing?: boolean;
}

export function encodeHello(h: SwitchHello | { port: number } | { error: string }): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(h));
}

/** Parses and checks a hello; throws RangeError with the reason. */
export function decodeHello(bytes: Uint8Array): SwitchHello {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new RangeError('hello is not JSON');
  }
  const h = v as Partial<SwitchHello>;
  if (typeof h !== 'object' || h === null) throw new RangeError('hello is not an object');
  if (h.kind !== 'synthetic' && h.kind !== 'emulated') throw new RangeError(`hello kind ${String(h.kind)}`);
  if (typeof h.mac !== 'string') throw new RangeError('hello without a MAC');
  parseMac(h.mac);
  for (const k of ['vlanId', 'mtu'] as const) if (h[k] !== undefined && typeof h[k] !== 'number') throw new RangeError(`hello ${k} is not a number`);
  if (h.name !== undefined && (typeof h.name !== 'string' || h.name.length > 128)) throw new RangeError('hello name');
  return { kind: h.kind, mac: h.mac, name: h.name, vlanId: h.vlanId, mtu: h.mtu, allowMacSpoofing: h.allowMacSpoofing === true };
}

export function portKindOf(h: SwitchHello): SwitchPortKind {
  return h.kind === 'synthetic' ? SwitchPortKind.Synthetic : SwitchPortKind.Emulated;
}
