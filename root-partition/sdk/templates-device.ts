/**
 * The `device` project template of `tsvisor sdk new`: a synthetic device pair, a VSP in
 * TypeScript and a VSC in an AssemblyScript guest, with a test that boots the guest against the
 * VSP through the SDK harness. The device is a request/answer service: the guest sends
 * { op u32 = 1, value u32 } in-band with a completion requested; the VSP completes it with
 * { status u32, value + 1 u32 }. Each function returns one file's text.
 */
import type { TemplateContext } from './scaffold.ts';

/**
 * The generated code's `import.meta.url`, spelled without the token: the CLI bundle rewrites that
 * token in every source it holds to the source's own URL (worker-bundles.ts), string literals
 * included, which would bake this repository's path into generated projects.
 */
export const IMPORT_META_URL = ['import', 'meta', 'url'].join('.');

export function deviceHostProtocol(c: TemplateContext): string {
  return `/**
 * The ${c.name} device's wire format (a project device, not a Hyper-V one). The guest copy is
 * guest/${c.name}-protocol.ts; keep the two in step.
 *
 * Request (VM_PKT_DATA_INBAND, completion requested): op u32 @0 = ${c.UPPER}_OP_INCREMENT, value u32 @4.
 * Completion (VM_PKT_COMP, same transaction id):      status u32 @0 (0 = success), value + 1 u32 @4.
 */
export const ${c.UPPER}_INTERFACE_TYPE = '${c.guid}';
export const ${c.UPPER}_INTERFACE_INSTANCE = '${c.instance}';
export const ${c.UPPER}_OP_INCREMENT = 1;
export const ${c.UPPER}_MESSAGE_SIZE = 8;
export const ${c.UPPER}_STATUS_SUCCESS = 0;
export const ${c.UPPER}_STATUS_INVALID_REQUEST = 0xc000000d;
`;
}

export function deviceVsp(c: TemplateContext): string {
  return `/**
 * The ${c.name} VSP: answers each increment request with value + 1. A request that is not one
 * (wrong op, too short, no completion asked for) is refused with a status, and the device keeps
 * serving: the guest is not trusted.
 */
import type { PacketBatch, VspChannel } from '${c.sdk}/vmbus/host/vsp-channel.ts';
import type { Vsp } from '${c.sdk}/vmbus/host/vsp.ts';
import { VmbusPacketType, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED } from '${c.sdk}/vmbus/ring/index.ts';
import {
  ${c.UPPER}_INTERFACE_INSTANCE, ${c.UPPER}_INTERFACE_TYPE, ${c.UPPER}_MESSAGE_SIZE, ${c.UPPER}_OP_INCREMENT, ${c.UPPER}_STATUS_INVALID_REQUEST, ${c.UPPER}_STATUS_SUCCESS,
} from './${c.name}-protocol.ts';

export class ${c.Pascal}Vsp implements Vsp {
  readonly offer = { interfaceType: ${c.UPPER}_INTERFACE_TYPE, interfaceInstance: ${c.UPPER}_INTERFACE_INSTANCE };
  readonly maxReplyBytes = ${c.UPPER}_MESSAGE_SIZE;
  readonly maxPacketBytes = 256;
  requests = 0;
  refused = 0;
  private readonly reply = new DataView(new ArrayBuffer(${c.UPPER}_MESSAGE_SIZE));

  onOpen(_channel: VspChannel): number {
    return 0; // accept every open
  }

  onPackets(channel: VspChannel, batch: PacketBatch): void {
    for (let p = batch.next(); p !== null; p = batch.next()) {
      if (p.type !== VmbusPacketType.DataInband || (p.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED) === 0) {
        this.refused++;
        continue;
      }
      const ok = p.payloadLength >= ${c.UPPER}_MESSAGE_SIZE && p.view.getUint32(p.payloadOffset, true) === ${c.UPPER}_OP_INCREMENT;
      this.reply.setUint32(0, ok ? ${c.UPPER}_STATUS_SUCCESS : ${c.UPPER}_STATUS_INVALID_REQUEST, true);
      this.reply.setUint32(4, ok ? (p.view.getUint32(p.payloadOffset + 4, true) + 1) >>> 0 : 0, true);
      if (ok) this.requests++;
      else this.refused++;
      channel.complete(p, new Uint8Array(this.reply.buffer));
    }
  }
}
`;
}

export function deviceGuestProtocol(c: TemplateContext): string {
  return `// The ${c.name} device's wire format, guest copy (host: host/${c.name}-protocol.ts).
export const ${c.UPPER}_OP_INCREMENT: u32 = 1;
export const ${c.UPPER}_MESSAGE_SIZE: u32 = 8;

/** Interface GUID ${c.guid} in wire layout (Data1/2/3 little-endian). */
export const ${c.UPPER}_INTERFACE_TYPE: usize = memory.data<u8>([${c.guidWire}]);
`;
}

export function deviceGuestMain(c: TemplateContext): string {
  return `// A guest with the ${c.name} VSC: connects to VMBus, opens the ${c.name} device, sends ten
// increment requests and checks each answer, closes, unloads, halts. Prints key=value lines on
// COM1 for the test (test/${c.name}.test.ts).
import { sti } from "${c.sdk}/child-sdk/platform/hv";
import { puts, putDec } from "${c.sdk}/child-sdk/kernel/console";
import { kernelBoot, SETUP_HYPERCALLS } from "${c.sdk}/child-sdk/kernel/boot";
import { pageAlloc } from "${c.sdk}/child-sdk/kernel/pages";
import { vmbusConnect, vmbusInit, vmbusUnload } from "${c.sdk}/child-sdk/vmbus/vmbus-driver";
import { vscClose, vscOpen } from "${c.sdk}/child-sdk/vmbus/vsc";
import { packetOffset8, packetTransIdLo, packetType } from "${c.sdk}/child-sdk/vmbus/ring";
import { VmbusPacketType } from "${c.sdk}/child-sdk/vmbus/ring-layout";
import { ${c.UPPER}_INTERFACE_TYPE, ${c.UPPER}_MESSAGE_SIZE, ${c.UPPER}_OP_INCREMENT } from "./${c.name}-protocol";

const VMBUS_VECTOR: u32 = 0x30;
const RING_BYTES: u32 = 4 * 4096; // each way, control page included
const REQUESTS: u32 = 10;

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\\n");
}

/** Runs after the kernel has checked the boot information and enabled hypercalls; returning 0 halts the VP. */
function main(): i32 {
  vmbusInit(VMBUS_VECTOR);
  sti();
  kv("connected", vmbusConnect() ? 1 : 0);
  const ch = vscOpen(${c.UPPER}_INTERFACE_TYPE, RING_BYTES, RING_BYTES);
  kv("opened", ch != null ? 1 : 0);
  if (ch != null) {
    const tx = pageAlloc(), rx = pageAlloc();
    let replies: u32 = 0, wrong: u32 = 0;
    for (let i: u32 = 0; i < REQUESTS; i++) {
      store<u32>(tx, ${c.UPPER}_OP_INCREMENT);
      store<u32>(tx, i * 10, 4);
      ch.sendInband(i, 0, tx, ${c.UPPER}_MESSAGE_SIZE, true);
      const n = ch.recv(rx, 4096);
      if (n <= 0) break;
      const body = rx + (<usize>packetOffset8(rx) << 3);
      const good = packetType(rx) == VmbusPacketType.Completion && packetTransIdLo(rx) == i
        && load<u32>(body) == 0 && load<u32>(body, 4) == i * 10 + 1;
      if (good) replies++;
      else wrong++;
    }
    kv("replies", replies);
    kv("wrong", wrong);
    vscClose(ch);
  }
  kv("unloaded", vmbusUnload() ? 1 : 0);
  puts("done\\n");
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main, SETUP_HYPERCALLS);
}

export { interrupt } from "${c.sdk}/child-sdk/kernel/boot";
`;
}

export function deviceTest(c: TemplateContext): string {
  return `/**
 * Boots the guest against the ${c.name} VSP on the real host side (the tsvisor SDK harness) and
 * checks both halves: what the guest saw (its key=value lines) and what the VSP counted.
 */
import { GuestHarness } from '${c.sdk}/root-partition/sdk/harness.ts';
import { buildGuestImage } from '${c.sdk}/root-partition/sdk/guest-image.ts';
import { ${c.Pascal}Vsp } from '../host/${c.name}-vsp.ts';

const IMAGE = new URL('../build/guest.wasm', ${IMPORT_META_URL}).pathname;
let h: GuestHarness | undefined;

beforeAll(() => buildGuestImage(new URL('../guest/main.ts', ${IMPORT_META_URL}).pathname, IMAGE));
afterEach(async () => { await h?.dispose(); h = undefined; });

describe('${c.name} device', () => {
  it('answers every request of the guest, which then unloads and halts', async () => {
    const vsp = new ${c.Pascal}Vsp();
    h = await GuestHarness.boot({ image: IMAGE, vsps: [vsp] });
    await h.waitFor('done\\n');
    expect(h.values()).toMatchObject({ connected: 1, opened: 1, replies: 10, wrong: 0, unloaded: 1 });
    expect(vsp.requests).toBe(10);
    expect(vsp.refused).toBe(0);
    await h.waitForHalt();
    expect(h.vpExit()).toEqual({ reason: 'halted' });
    const traffic = h.vmbusTraffic();
    expect(traffic.host.packetsIn).toBe(10);
    expect(traffic.host.packetsOut).toBe(10);
    expect(traffic.errors).toEqual([]);
  });
});
`;
}
