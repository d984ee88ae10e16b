import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChannelMessage } from '../../vmbus/protocol/channel-messages.ts';

/** One shared hex vector of test/vectors/channel/messages.json. */
export interface ChannelVector {
  name: string;
  bytes: Uint8Array;
  message: ChannelMessage;
}

const FIXED_BYTE_FIELDS: Record<string, number> = { userDefined: 120, userData: 120 };

function hexGroups(groups: string[]): Uint8Array {
  const hex = groups
    .map((g) => {
      const rep = /^([0-9a-f]{2})\*(\d+)$/i.exec(g);
      return rep ? rep[1]!.repeat(Number(rep[2])) : g;
    })
    .join('');
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function revive(key: string, value: unknown): unknown {
  if (typeof value === 'string' && /^\d+n$/.test(value)) return BigInt(value.slice(0, -1));
  if (typeof value === 'string' && value.startsWith('hex:')) {
    const b = Buffer.from(value.slice(4), 'hex');
    const out = new Uint8Array(FIXED_BYTE_FIELDS[key] ?? b.length);
    out.set(b);
    return out;
  }
  return value;
}

export function loadChannelVectors(): ChannelVector[] {
  const path = fileURLToPath(new URL('../vectors/channel/messages.json', import.meta.url));
  const raw = JSON.parse(readFileSync(path, 'utf8'), revive) as { vectors: { name: string; hex: string[]; message: ChannelMessage }[] };
  return raw.vectors.map((v) => ({ name: v.name, bytes: hexGroups(v.hex), message: v.message }));
}

export function vector(name: string): ChannelVector {
  const v = loadChannelVectors().find((x) => x.name === name);
  if (!v) throw new Error(`no vector ${name}`);
  return v;
}

export const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
