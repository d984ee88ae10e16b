/**
 * `tsvisor run <image>`: boots a guest image in a throwaway child partition with the emulated
 * platform, streams COM1 to stdout (and stdin to COM1), and ends when every VP has stopped —
 * the guest returned, halted for good, or faulted — or when the user interrupts.
 */
import { resolve } from 'node:path';
import { loadUserVsps } from '../vmwp/user-vsp-loader.ts';
import type { UserVspConfig } from '../vmwp/device-config.ts';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-events.ts';
import { PartitionProperty } from '../../hypervisor/partition.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { EmulatedPlatform } from '../vmwp/emulated-platform.ts';
import { openDisk } from '../storage/open-disk.ts';
import { ScsiDisk } from '../storage/scsi/scsi-disk.ts';
import { IntegrationServices } from '../vsp/ic/integration-services.ts';
import { lunsAtLocations } from '../vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../vsp/storvsp/storvsp-vsp.ts';

export interface RunOptions {
  memory: string;
  vps: string;
  cmdline: string;
  spin?: string;
  counters?: boolean;
  /** Raw disk images for IDE: primary master, primary slave, secondary master, secondary slave. */
  disk?: string[];
  /** Raw disk images as LUNs 0, 1, … of a synthetic SCSI controller; with them, VMBus offers it and the integration services. */
  scsi?: string[];
  /** The console to stderr, and one JSON object on stdout at the end. */
  json?: boolean;
  /** The user's own VSP modules, `file` or `file#ExportedClass`, offered on VMBus after the SCSI controller. */
  vsp?: string[];
}

/** `file.ts#Class` → { module, export }; the path made absolute. */
export function userVspSpec(text: string): UserVspConfig {
  const at = text.lastIndexOf('#');
  const [file, name] = at > 0 ? [text.slice(0, at), text.slice(at + 1)] : [text, undefined];
  return { module: resolve(file), ...(name ? { export: name } : {}) };
}

/** A disk's stable SCSI id (serial number, WWN), from its path as the VM worker derives it. */
function diskIdOf(path: string): Uint8Array {
  return createHash('sha256').update(path).digest().subarray(0, 16);
}

/** Instance GUID of `tsvisor run`'s one SCSI controller. */
const RUN_SCSI_INSTANCE = 'a3c5e1f0-7b2d-4e6a-9c8b-1d2e3f4a5b6c';

export function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMG]i?B?)?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot read size "${text}" (examples: 64M, 1G, 16777216)`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  return Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1);
}

export function describeExit(vp: number, exit: VpExitReason): string {
  switch (exit.reason) {
    case 'returned':
      return `VP ${vp}: the guest returned ${exit.value} from its entry point`;
    case 'halted':
      return `VP ${vp}: halted with interrupts disabled (stopped for good)`;
    case 'stopped':
      return `VP ${vp}: stopped by the host`;
    case 'reset':
      return `VP ${vp}: the guest requested a reset`;
    case 'fault':
      return `VP ${vp}: guest fault (${exit.kind}): ${exit.message}`;
    case 'captured':
      return `VP ${vp}: captured (its state taken to continue elsewhere)`;
  }
}

export async function runGuestImage(imagePath: string, opts: RunOptions): Promise<number> {
  const image = readFileSync(imagePath);
  const diskFiles = opts.disk ?? [];
  if (diskFiles.length > 4) throw new Error(`at most 4 IDE disks (primary and secondary, master and slave); got ${diskFiles.length}`);
  // Opened before the partition exists, so a missing or unusable file is refused with its own error.
  // Each image is locked while the run holds it; its I/O errors (with errno) go to stderr.
  const diskLog = (m: string) => process.stderr.write(`[tsvisor] ${m}\n`);
  const disks = diskFiles.map((f) => openDisk(f, { log: diskLog }));
  const scsiDisks = (opts.scsi ?? []).map((f) => openDisk(f, { log: diskLog }));
  const userVsps = await loadUserVsps((opts.vsp ?? []).map(userVspSpec));
  const hv = new Hypervisor();
  const partition = hv.createPartition({
    name: 'run',
    memoryBytes: parseSize(opts.memory),
    vpCount: Number(opts.vps),
    ...(opts.spin !== undefined ? { waitPolicy: { spinIterations: Number(opts.spin) } } : {}),
  });
  partition.initialize();
  partition.loadImage(image, opts.cmdline);
  const platform = new EmulatedPlatform(partition, {
    console: (bytes) => (opts.json ? process.stderr : process.stdout).write(Buffer.from(bytes)),
    ide: disks.map((backend) => ({ backend })),
  });
  partition.inbox.handler = platform;
  let vmbus: VmbusHost | undefined;
  let ic: IntegrationServices | undefined;
  if (scsiDisks.length > 0 || userVsps.length > 0) {
    const log = (e: Error) => process.stderr.write(`[tsvisor] vmbus: ${e.message}\n`);
    vmbus = new VmbusHost(partition, { log });
    if (scsiDisks.length > 0)
      vmbus.addVsp(
        new StorVsp({ instanceId: RUN_SCSI_INSTANCE, luns: lunsAtLocations(scsiDisks.map((d, i) => new ScsiDisk(d, { diskId: diskIdOf(opts.scsi![i]!) }))) }),
      );
    for (const vsp of userVsps) vmbus.addVsp(vsp);
    ic = new IntegrationServices({ referenceTime: () => partition.getProperty(PartitionProperty.ReferenceTime).value, log });
    ic.addTo(vmbus);
  }
  const ac = new AbortController();
  const serving = partition.inbox.serveAsync(ac.signal);
  const onInput = (chunk: Buffer) => platform.com1.receive(chunk);
  // A terminal or a pipe (`printf 'help\n' | tsvisor run ref-emulated`) feeds COM1's receiver.
  process.stdin.on('data', onInput);
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    void partition.stop();
  };
  process.once('SIGINT', onSigint);
  const exits: string[] = [];
  const ended: { vp: number; reason: string; description: string }[] = [];
  let failed = false;
  partition.on('vp-exit', ({ vp, exit }: { vp: number; exit: VpExitReason }) => {
    exits.push(describeExit(vp, exit));
    ended.push({ vp, reason: exit.reason, description: describeExit(vp, exit) });
    if (exit.reason === 'fault') failed = true;
  });
  partition.start();
  await partition.whenIdle();
  process.off('SIGINT', onSigint);
  process.stdin.off('data', onInput);
  // A pipe whose writer is still open would keep the process alive after the guest stopped.
  process.stdin.destroy();
  ic?.dispose();
  ac.abort();
  await serving;
  vmbus?.dispose();
  for (const line of exits) process.stderr.write(`[tsvisor] ${line}\n`);
  if (interrupted) process.stderr.write('[tsvisor] interrupted\n');
  if (opts.counters) {
    for (let vp = 0; vp < partition.vpCount; vp++) process.stderr.write(`[tsvisor] VP ${vp} counters ${JSON.stringify(partition.counters(vp))}\n`);
  }
  const counters = opts.counters ? Array.from({ length: partition.vpCount }, (_, vp) => partition.counters(vp)) : undefined;
  await hv.shutdown();
  for (const d of [...disks, ...scsiDisks]) d.close();
  if (opts.json)
    console.log(
      JSON.stringify({ image: imagePath, exitCode: failed ? 1 : 0, interrupted, vps: ended, ...(counters ? { counters } : {}) }, (_k, v: unknown) =>
        typeof v === 'bigint' ? Number(v) : v,
      ),
    );
  return failed ? 1 : 0;
}
