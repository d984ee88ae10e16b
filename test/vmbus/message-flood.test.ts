/**
 * A guest that keeps posting VMBus messages that need an answer and never empties its SINT2
 * slot must not make the host hold an unbounded queue: the host stops taking its messages, so
 * its own HvCallPostMessage fails with INSUFFICIENT_BUFFERS (16 buffers per port), and nothing
 * already accepted is lost: once the guest consumes, every answer arrives, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HvStatus } from '../../abi/hv-status.ts';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { Owner, VP_SCONTROL, VP_SIMP, VP_SINT, vpBase } from '../../hypervisor/partition-control.ts';
import type { Partition } from '../../hypervisor/partition.ts';
import { retryDelivery } from '../../hypervisor/synic/synic-delivery.ts';
import { GuestMessageOutbox } from '../../vmbus/host/guest-message-outbox.ts';
import { outboxCapacity, VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { ChannelMessageType as T, VMBUS_MESSAGE_CONNECTION_ID_4, VMBUS_SYNIC_MESSAGE_TYPE, VmbusVersion } from '../../vmbus/protocol/channel-constants.ts';
import { encodeChannelMessage } from '../../vmbus/protocol/channel-encode.ts';
import { DEFAULT_LIMITS } from '../../vmbus/server/server-types.ts';

const SIMP = 0x5000;
const SLOT2 = SIMP + 2 * 256;
let hv: Hypervisor | null = null;
afterEach(async () => {
  await hv?.shutdown();
  hv = null;
});

function partitionWithSynic(): Partition {
  hv = new Hypervisor();
  const p = hv.createPartition({ memoryBytes: 1 << 20, vpCount: 1 });
  p.initialize();
  const b = vpBase(0);
  p.ctl.i32[(b + VP_SCONTROL) >> 2] = 1;
  p.ctl.i64[(b + VP_SIMP) >> 3] = BigInt(SIMP | 1);
  p.ctl.i64[(b + VP_SINT + 16) >> 3] = 0x32n;
  return p;
}

const initiateContact = encodeChannelMessage({
  type: T.InitiateContact,
  version: VmbusVersion.Win10V5,
  targetVcpu: 0,
  interruptPage: 0n,
  msgSint: 2,
  msgVtl: 0,
  featureFlags: 0,
  monitorPage1: 0n,
  monitorPage2: 0n,
  clientId: null,
});

describe('host → guest message outbox under a guest that never consumes', () => {
  it('200,000 INITIATE_CONTACTs: the queue stays at its bound, the guest gets INSUFFICIENT_BUFFERS, heap growth small', () => {
    const p = partitionWithSynic();
    const errors: HvError[] = [];
    const host = new VmbusHost(p, { log: (e) => errors.push(e) });
    const statuses = new Map<HvStatus, number>();
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++) {
      const s = p.ports.postMessage(Owner.Child, VMBUS_MESSAGE_CONNECTION_ID_4, VMBUS_SYNIC_MESSAGE_TYPE, initiateContact);
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
      if (i % 8 === 0) p.inbox.pump();
    }
    p.inbox.pump();
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    const m = host.messagesToGuest;
    // Accepted: the 32 answers the outbox may hold, 16 in the SINT queue + 1 in the slot, and 16 left in the port.
    expect(m.pending).toBe(32);
    expect(m.highWater).toBe(32);
    expect(m.dropped).toBe(0);
    expect(statuses.get(HvStatus.InsufficientBuffers)).toBeGreaterThan(199_000);
    expect(host.stats.messagesFromGuest).toBeLessThan(100);
    expect(host.stats.guestMessagesHeldBack).toBeGreaterThan(0);
    expect(heapGrowth).toBeLessThan(8 * 1024 * 1024);
    expect(errors).toEqual([]);

    // The guest now consumes, one message at a time: every accepted INITIATE_CONTACT is answered.
    const accepted = statuses.get(HvStatus.Success)!;
    let answered = 0;
    for (let round = 0; round < 10 * accepted && answered < accepted; round++) {
      if (p.mem.readU32(SLOT2) !== 0) {
        expect(p.mem.readU32(SLOT2 + 16)).toBe(T.VersionResponse);
        answered++;
        p.mem.writeU32(SLOT2, 0);
        retryDelivery(p.ctl, p.mem, 0);
      }
      p.inbox.pump();
    }
    expect(answered).toBe(accepted);
    expect(host.messagesToGuest).toMatchObject({ pending: 0, dropped: 0, sent: accepted });
    host.dispose();
  });

  it('a burst larger than the accept bound (all offers at REQUESTOFFERS) is held whole, within capacity', () => {
    const posted: number[] = [];
    const limits = { ...DEFAULT_LIMITS };
    const outbox = new GuestMessageOutbox(
      () => HvStatus.InsufficientBuffers,
      () => {},
      outboxCapacity(limits),
    );
    for (let i = 0; i < limits.maxChannels + 1; i++) outbox.send(Uint8Array.of(i & 0xff), 0);
    expect(outbox.pending).toBe(limits.maxChannels + 1);
    expect(outbox.full).toBe(true);
    expect(outbox.dropped).toBe(0);
    // Past capacity (never reached by the protocol): counted as dropped, the rest kept in order.
    const small = new GuestMessageOutbox(
      (m) => {
        posted.push(m[0]);
        return HvStatus.Success;
      },
      () => {},
      4,
      2,
    );
    const refusing = new GuestMessageOutbox(
      () => HvStatus.InsufficientBuffers,
      () => {},
      4,
      2,
    );
    for (let i = 0; i < 6; i++) refusing.send(Uint8Array.of(i), 0);
    expect(refusing.pending).toBe(4);
    expect(refusing.dropped).toBe(2);
    for (let i = 0; i < 6; i++) small.send(Uint8Array.of(i), 0);
    expect(posted).toEqual([0, 1, 2, 3, 4, 5]);
    outbox.close();
    refusing.close();
  });

  it('removal is O(1): 100,000 queued messages drain in well under a second', () => {
    let open = false,
      n = 0;
    const outbox = new GuestMessageOutbox(
      () => (open ? (n++, HvStatus.Success) : HvStatus.InsufficientBuffers),
      () => {},
      100_000,
      1,
    );
    for (let i = 0; i < 100_000; i++) outbox.send(Uint8Array.of(1), 0);
    open = true;
    const t0 = performance.now();
    outbox.flush();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(n).toBe(100_000);
    expect(outbox.pending).toBe(0);
    outbox.close();
  });
});
