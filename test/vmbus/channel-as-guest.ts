import { fileURLToPath } from 'node:url';
import { compileAssemblyScript } from '../helpers/compile-as.ts';

/** The guest channel codec and client (child-sdk/vmbus/client-harness.ts) as a Wasm instance. */
export interface GuestChannelExports {
  memory: WebAssembly.Memory;
  checkChannelMessage(msg: number, length: number): number;
  encodeInitiateContact(out: number, version: number, targetVcpu: number, interruptPageOrSint: number, monitor1: number, monitor2: number): number;
  encodeHeaderOnly(out: number, type: number): number;
  encodeRelidMessage(out: number, type: number, relid: number): number;
  encodeOpenChannel(out: number, relid: number, openId: number, gpadl: number, targetVp: number, downstream: number, userData: number): number;
  encodeGpadlHeader(out: number, relid: number, gpadl: number, totalPages: number, pfns: number, pfnCount: number): number;
  encodeGpadlBody(out: number, msgNumber: number, gpadl: number, pfns: number, pfnCount: number): number;
  encodeGpadlTeardown(out: number, relid: number, gpadl: number): number;
  readU8(msg: number, offset: number): number;
  readU16(msg: number, offset: number): number;
  readU32(msg: number, offset: number): number;
  clientInit(st: number, targetVcpu: number, interruptPage: number, monitor1: number, monitor2: number): void;
  clientStart(st: number, out: number): number;
  clientReceive(st: number, msg: number, length: number, out: number): number;
  clientPostConnectionId(st: number): number;
  clientPhase(st: number): number;
  clientVersion(st: number): number;
  clientMsgConnId(st: number): number;
  clientLastError(st: number): number;
  clientFindOffer(st: number, ifType: number, subChannelIndex: number): number;
  clientOfferCount(st: number): number;
  clientChannelState(st: number, relid: number): number;
  clientChannelConnectionId(st: number, relid: number): number;
  clientChannelSubIndex(st: number, relid: number): number;
  clientChannelOpenStatus(st: number, relid: number): number;
  clientChannelInstance(st: number, relid: number, dst: number): number;
  clientCreateGpadl(st: number, relid: number, handle: number, pfns: number, pageCount: number, out: number): number;
  clientNextGpadlBody(st: number, out: number): number;
  clientGpadlState(st: number, handle: number): number;
  clientGpadlStatus(st: number, handle: number): number;
  clientTeardownGpadl(st: number, handle: number, out: number): number;
  clientOpenChannel(st: number, relid: number, handle: number, downstream: number, targetVp: number, userData: number, out: number): number;
  clientCloseChannel(st: number, relid: number, out: number): number;
  clientReleaseRelid(st: number, relid: number, out: number): number;
  clientUnload(st: number, out: number): number;
}

/** 4 MiB of guest memory; the image's static data sits at 1 MiB (IMAGE_BASE). */
export const GUEST_PAGES = 1024;
/** Fixed scratch GPAs above the image, as the SDK's page allocator would hand out. */
export const GPA = { state: 0x200000, out: 0x203000, rx: 0x204000, scratch: 0x205000, pfns: 0x206000 } as const;

export function compileGuestChannel(): Promise<WebAssembly.Module> {
  return compileAssemblyScript(fileURLToPath(new URL('../../child-sdk/vmbus/client-harness.ts', import.meta.url)));
}

export function instantiateGuestChannel(module: WebAssembly.Module): { g: GuestChannelExports; bytes: Uint8Array } {
  const pages = (GUEST_PAGES * 4096) / 65536;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return { g: instance.exports as unknown as GuestChannelExports, bytes: new Uint8Array(memory.buffer) };
}
