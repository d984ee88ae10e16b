/**
 * The `guest` project template of `tsvisor sdk new`: a guest image with the four integration
 * services of the child SDK (child-sdk/drivers/ic-services.ts), and a test that boots it with the
 * host's integration services: heartbeat OK, a KVP item each way, a graceful shutdown.
 */
import { IMPORT_META_URL } from './templates-device.ts';
import type { TemplateContext } from './scaffold.ts';

export function guestOnlyMain(c: TemplateContext): string {
  return `// A guest with the integration services: heartbeat, shutdown, time sync, KVP exchange. It
// publishes one KVP item, serves the host, and halts when the host asks it to shut down.
import { sti } from "${c.sdk}/child-sdk/platform/hv";
import { puts, putDec } from "${c.sdk}/child-sdk/kernel/console";
import { kernelBoot, SETUP_HYPERCALLS } from "${c.sdk}/child-sdk/kernel/boot";
import { vmbusConnect, vmbusInit } from "${c.sdk}/child-sdk/vmbus/vmbus-driver";
import { IcDevice, icServe, icWait } from "${c.sdk}/child-sdk/drivers/ic";
import {
  icHaltForShutdown, icHeartbeatOpen, icKvpOpen, icKvpPublish, icKvpPublishIntrinsic, icShutdownOpen, icShutdownRequested, icTimeSyncOpen,
} from "${c.sdk}/child-sdk/drivers/ic-services";
import { KVP_POOL_GUEST } from "${c.sdk}/child-sdk/drivers/ic-kvp-protocol";

function kv(key: string, value: u64): void {
  puts(key);
  puts("=");
  putDec(value);
  puts("\\n");
}

/** Called by the shutdown driver before it answers: true accepts (flags: bit 0 force, bit 1 restart). */
function onShutdown(flags: u32, reasonCode: u32): bool {
  puts("shutdown requested\\n");
  return true;
}

/** Runs after the kernel has checked the boot information and enabled hypercalls. */
function main(): i32 {
  vmbusInit(0x30);
  sti();
  kv("connected", vmbusConnect() ? 1 : 0);
  const devices = new StaticArray<IcDevice | null>(4);
  devices[0] = icHeartbeatOpen();
  devices[1] = icShutdownOpen(onShutdown);
  devices[2] = icTimeSyncOpen();
  devices[3] = icKvpOpen();
  icKvpPublishIntrinsic("${c.name}-guest", "tsvisor child SDK", "0.1");
  icKvpPublish(KVP_POOL_GUEST, "Status", "ready");
  puts("serving\\n");
  while (icShutdownRequested() == 0xffffffff) {
    for (let i = 0; i < 4; i++) if (devices[i] != null) icServe(devices[i]!);
    if (icShutdownRequested() == 0xffffffff) icWait(devices);
  }
  puts("bye\\n");
  icHaltForShutdown();
  return 0;
}

export function boot(): i32 {
  return kernelBoot(main, SETUP_HYPERCALLS);
}

export { interrupt } from "${c.sdk}/child-sdk/kernel/boot";
`;
}

export function guestOnlyTest(c: TemplateContext): string {
  return `/** Boots the guest with the host's integration services (the tsvisor SDK harness). */
import { GuestHarness } from '${c.sdk}/root-partition/sdk/harness.ts';
import { buildGuestImage } from '${c.sdk}/root-partition/sdk/guest-image.ts';
import { HeartbeatStatus } from '${c.sdk}/root-partition/vsp/ic/heartbeat-vsp.ts';
import { KvpPool } from '${c.sdk}/root-partition/vsp/ic/kvp-protocol.ts';

const IMAGE = new URL('../build/guest.wasm', ${IMPORT_META_URL}).pathname;
let h: GuestHarness | undefined;

beforeAll(() => buildGuestImage(new URL('../guest/main.ts', ${IMPORT_META_URL}).pathname, IMAGE));
afterEach(async () => { await h?.dispose(); h = undefined; });

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('guest with integration services', () => {
  it('heartbeat OK, KVP both ways, graceful shutdown', async () => {
    h = await GuestHarness.boot({ image: IMAGE, integrationServices: { heartbeat: { intervalMs: 50, lostAfterMs: 1000 } } });
    await h.waitFor('serving\\n');
    const ic = h.ic!;
    await until(() => ic.heartbeatStatus() === HeartbeatStatus.Ok && ic.kvp.ready && ic.shutdown.ready);
    expect(await ic.kvpSetHostItem(KvpPool.External, 'Greeting', 'hello')).toEqual({ ok: true });
    expect(await ic.refreshKvpGuestItems()).toBe(true);
    expect(ic.kvpGuestItems().get('Status')).toBe('ready');
    const r = await ic.initiateShutdown({ reason: 'test done', timeoutMs: 5000, whenOff: () => h!.waitForHalt() });
    expect(r.outcome).toBe('shut-down');
    expect(h.console()).toContain('bye\\n');
  });
});
`;
}
