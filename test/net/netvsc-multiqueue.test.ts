/**
 * Guest in the loop, multi-queue: a ref-enlightened VM whose netvsc asks for two channels
 * (netq=2) on a NIC that offers sub-channels. It gets sub-channel 1 through NVSP SUBCHANNEL and a
 * VMBus offer, opens it, and sets RSS (Toeplitz, Linux's key, 16 entries alternating channels).
 * UDP datagrams of many flows to its echo service are spread by the host as the hash and the
 * table say, and every echo comes back intact on the channel its request came in on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellRig } from '../guests/shell-rig.ts';
import { rssHashInput, toeplitzHash } from '../../root-partition/vsp/netvsp/rss-toeplitz.ts';
import { RssHashType } from '../../root-partition/vsp/netvsp/rss-parameters.ts';
import { udpFrame } from './udp-frame.ts';

const MAC = Uint8Array.from([0x00, 0x15, 0x5d, 0x30, 0x00, 0x01]);
const PEER = Uint8Array.from([0x00, 0x15, 0x5d, 0x30, 0x00, 0x99]);
/** What the SDK's netvsc sets (netvsc-protocol.ts): Linux's key, 16 entries i mod 2, IPv4 with TCP and UDP ports. */
const KEY = Buffer.from('6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa', 'hex');
const TYPES = RssHashType.Ipv4 | RssHashType.TcpIpv4 | RssHashType.UdpIpv4;
const FLOWS = 24;

let rig: ShellRig;

beforeAll(async () => {
  rig = await ShellRig.boot({ image: 'ref-enlightened', syntheticNics: [MAC], nicChannels: 2, cmdline: 'netq=2' });
  await rig.ready();
}, 60_000);

afterAll(async () => {
  await rig?.dispose();
});

describe('netvsc on two queues (sub-channel and RSS)', () => {
  it('spreads received flows by the hash over both channels; each echo comes back intact on its flow channel', async () => {
    expect(rig.console()).toMatch(/network: netvsc \(VMBus relid \d+, NVSP 6\.1, 2 queues, link up\)/);
    const vsp = rig.netVsps[0]!;
    expect(vsp.offeredSubChannels).toBe(1);
    expect(vsp.net!.openSubChannels).toEqual([1]);
    expect(vsp.net!.rndis.rss?.table.length).toBe(16);
    expect(await rig.command('ip 10.0.3.2/24')).toContain('address 10.0.3.2/24');
    const echoes = new Map<number, Uint8Array>();
    const echoFrames: Uint8Array[] = [];
    rig.onSyntheticTransmit = (_, f) => {
      if (f.length >= 42 && f[23] === 17) echoes.set(new DataView(f.buffer, f.byteOffset).getUint16(36), f.slice(42)), echoFrames.push(f.slice());
    };
    const before = { ...vsp.stats };
    const frames = Array.from({ length: FLOWS }, (_, i) =>
      udpFrame({
        dstMac: MAC,
        srcMac: PEER,
        srcIp: `10.0.3.${100 + i}`,
        dstIp: '10.0.3.2',
        srcPort: 30000 + i * 7,
        dstPort: 7,
        data: Uint8Array.from({ length: 64 + i }, (_, k) => (k * 13 + i) & 0xff),
      }),
    );
    const onSub = frames.filter((f) => toeplitzHash(KEY, rssHashInput(f, TYPES)!) % 2 === 1).length;
    expect(onSub).toBeGreaterThan(0);
    expect(onSub).toBeLessThan(FLOWS);
    for (const f of frames) expect(vsp.deliver([f])).toBe(1);
    await rig.waitUntil(() => echoes.size === FLOWS, 'every echo', 30_000);
    for (const [i, f] of frames.entries()) expect(Buffer.from(echoes.get(30000 + i * 7)!).equals(Buffer.from(f.subarray(42)))).toBe(true);
    const s = vsp.stats;
    expect(s.framesDeliveredOnSubChannels - before.framesDeliveredOnSubChannels).toBe(onSub);
    expect(s.framesTransmittedOnSubChannels - before.framesTransmittedOnSubChannels).toBe(onSub);
    expect(s.refused + s.transmitErrors + s.badCompletions + s.controlDropped).toBe(0);
    expect(await rig.command('counters')).toMatch(new RegExp(`netvsc: .*host_errors=0 .*queues=2 rx_sub=${onSub} tx_sub=${onSub} tx_csum=${FLOWS}`));
    // Transmit checksum offload: the guest left each echo's UDP checksum 0 and asked the host (checksum PPI), which filled it in.
    expect(s.checksumsOffloaded - before.checksumsOffloaded).toBe(FLOWS);
    for (const f of echoFrames) {
      const l4 = f.subarray(34, 14 + ((f[16]! << 8) | f[17]!));
      const words = Uint8Array.from([...f.subarray(26, 34), 0, 17, l4.length >> 8, l4.length & 0xff, ...l4]);
      let sum = 0;
      for (let i = 0; i < words.length; i += 2) sum += (words[i]! << 8) | (words[i + 1] ?? 0);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      expect((f[40]! << 8) | f[41]!).not.toBe(0);
      expect(sum).toBe(0xffff);
    }
  }, 60_000);
});
